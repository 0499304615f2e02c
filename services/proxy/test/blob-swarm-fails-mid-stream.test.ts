import test from 'ava';
import { FakeSwarmTroubleMidStream } from './helpers/fake-swarm.js';
import { blobPath, fetchAll, fetchCounting, layoutBlob, startProxy, startUpstream } from './helpers/fixture.js';

test('a swarm failure mid-body cuts the connection: the client sees a truncated body, not a clean end', async (t) => {
  const upstream = await startUpstream();
  t.teardown(() => upstream.stop());
  const layer = upstream.image.layers[0];
  if (layer === undefined) throw new Error('image has no layer');
  const content = await layoutBlob(upstream, layer.digest);
  const swarm = new FakeSwarmTroubleMidStream(content, 100_000, 'error');
  const proxy = await startProxy({ blobs: swarm, plainHttpHosts: [upstream.registry.host] });
  t.teardown(() => proxy.close());

  const response = await fetchCounting(`${proxy.url}${blobPath(upstream, layer.digest)}`);
  t.is(response.statusCode, 200);
  t.is(response.headers['content-length'], String(layer.sizeBytes));
  t.false(response.complete, 'the body was cut, not ended');
  t.is(response.received, 100_000);
  // undici sees the same thing as an error
  await t.throwsAsync(fetchAll(`${proxy.url}${blobPath(upstream, layer.digest)}`));
  t.true(swarm.calls[0]?.signal?.aborted, 'the swarm was told to stop');
  // The proxy still answers.
  const health = await fetchAll(`${proxy.url}/healthz`);
  t.is(health.statusCode, 200);
});
