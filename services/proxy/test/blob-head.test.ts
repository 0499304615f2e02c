import test from 'ava';
import { FakeSwarmFromRegistry } from './helpers/fake-swarm.js';
import { blobPath, fetchAll, startProxy, startUpstream } from './helpers/fixture.js';

test('HEAD of a blob answers size and digest from the registry, without a body and without asking the swarm', async (t) => {
  const upstream = await startUpstream();
  t.teardown(() => upstream.stop());
  const swarm = new FakeSwarmFromRegistry(upstream.client);
  const proxy = await startProxy({ blobs: swarm, plainHttpHosts: [upstream.registry.host] });
  t.teardown(() => proxy.close());
  const layer = upstream.image.layers[0];
  if (layer === undefined) throw new Error('image has no layer');

  const response = await fetchAll(`${proxy.url}${blobPath(upstream, layer.digest)}`, { method: 'HEAD' });
  t.is(response.statusCode, 200);
  t.is(response.headers['content-length'], String(layer.sizeBytes));
  t.is(response.headers['docker-content-digest'], layer.digest);
  t.is(response.headers['content-type'], 'application/octet-stream');
  t.is(response.headers['accept-ranges'], 'bytes');
  t.is(response.body.length, 0);
  t.is(swarm.calls.length, 0);
  t.is((await upstream.registry.blobGets()).get(layer.digest), undefined);
});
