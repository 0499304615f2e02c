import test from 'ava';
import { MANIFEST_ACCEPT, digestOf } from '@shoal/core';
import { FakeSwarmRejecting } from './helpers/fake-swarm.js';
import { fetchAll, manifestPath, startProxy, startUpstream } from './helpers/fixture.js';

test('a manifest by digest is fetched upstream once, then served from memory after a HEAD access check', async (t) => {
  const upstream = await startUpstream();
  t.teardown(() => upstream.stop());
  const proxy = await startProxy({ blobs: new FakeSwarmRejecting(), plainHttpHosts: [upstream.registry.host] });
  t.teardown(() => proxy.close());
  const headers = { accept: MANIFEST_ACCEPT };
  const url = `${proxy.url}${manifestPath(upstream, upstream.image.digest)}`;

  const first = await fetchAll(url, { headers });
  const second = await fetchAll(url, { headers });
  const head = await fetchAll(url, { method: 'HEAD', headers });
  for (const r of [first, second]) {
    t.is(r.statusCode, 200);
    t.is(digestOf(r.body), upstream.image.digest);
    t.is(r.headers['docker-content-digest'], upstream.image.digest);
    t.is(r.headers['content-type'], first.headers['content-type']);
    t.is(r.headers['content-length'], String(r.body.length));
  }
  t.is(head.statusCode, 200);
  t.is(head.headers['content-length'], first.headers['content-length']);

  const manifestGets = (await upstream.registry.requests()).filter((r) => r.method === 'GET' && r.uri.includes('/manifests/'));
  t.is(manifestGets.length, 1, 'one upstream GET; the rest came from the cache');

  // A tag resolved with GET fills the cache too: its digest is then served from memory.
  await fetchAll(`${proxy.url}${manifestPath(upstream, upstream.tag)}`, { headers });
  const afterTag = (await upstream.registry.requests()).filter((r) => r.method === 'GET' && r.uri.includes('/manifests/'));
  t.is(afterTag.length, 2);
});
