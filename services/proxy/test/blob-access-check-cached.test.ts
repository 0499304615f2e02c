import test from 'ava';
import { FakeSwarmFromRegistry } from './helpers/fake-swarm.js';
import { blobPath, fetchAll, startProxy, startUpstream } from './helpers/fixture.js';

test('the upstream access check (HEAD) of a blob is made once per credential within its TTL', async (t) => {
  const upstream = await startUpstream();
  t.teardown(() => upstream.stop());
  const proxy = await startProxy({ blobs: new FakeSwarmFromRegistry(upstream.client), plainHttpHosts: [upstream.registry.host] });
  t.teardown(() => proxy.close());
  const layer = upstream.image.layers[0];
  if (layer === undefined) throw new Error('image has no layer');
  const url = `${proxy.url}${blobPath(upstream, layer.digest)}`;

  for (let i = 0; i < 3; i++) t.is((await fetchAll(url)).statusCode, 200);
  t.is((await fetchAll(url, { method: 'HEAD' })).statusCode, 200);
  t.is((await fetchAll(url, { headers: { range: 'bytes=0-9' } })).statusCode, 206);
  // (skopeo's HEADs during the push answered 404; ours are the 200s)
  const heads = (await upstream.registry.requests()).filter((r) => r.method === 'HEAD' && r.digest === layer.digest && r.status === 200);
  t.is(heads.length, 1);
});
