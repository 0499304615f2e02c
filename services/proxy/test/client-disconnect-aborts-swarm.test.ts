import { once } from 'node:events';
import { request } from 'node:http';
import test from 'ava';
import { FakeSwarmEndless } from './helpers/fake-swarm.js';
import { blobPath, startProxy, startUpstream } from './helpers/fixture.js';

test('a client that disconnects mid-blob aborts the signal given to the swarm', async (t) => {
  const upstream = await startUpstream({ layers: [{ sizeBytes: 8 * 1024 * 1024, seed: 'disconnect' }] });
  t.teardown(() => upstream.stop());
  const swarm = new FakeSwarmEndless();
  const proxy = await startProxy({ blobs: swarm, plainHttpHosts: [upstream.registry.host] });
  t.teardown(() => proxy.close());
  const layer = upstream.image.layers[0];
  if (layer === undefined) throw new Error('image has no layer');

  const req = request(`${proxy.url}${blobPath(upstream, layer.digest)}`);
  req.end();
  const [response] = (await once(req, 'response')) as [import('node:http').IncomingMessage];
  t.is(response.statusCode, 200);
  let received = 0;
  for await (const chunk of response) {
    received += (chunk as Buffer).length;
    if (received >= 16 * 1024) break; // breaking out of the loop destroys the response, closing the socket
  }
  req.destroy();

  const signal = swarm.calls[0]?.signal;
  if (signal === undefined) throw new Error('the swarm got no signal');
  if (!signal.aborted) await once(signal, 'abort');
  t.true(signal.aborted);
  // And the swarm's body was destroyed, so its work stops.
  for (let i = 0; i < 100 && !swarm.destroyed; i++) await new Promise((r) => setTimeout(r, 10));
  t.true(swarm.destroyed);
});
