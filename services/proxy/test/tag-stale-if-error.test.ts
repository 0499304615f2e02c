import test from 'ava';
import { HEADER, MANIFEST_ACCEPT, digestOf } from '@shoal/core';
import { FakeSwarmRejecting } from './helpers/fake-swarm.js';
import { fetchAll, manifestPath, startProxy, startUpstream } from './helpers/fixture.js';

// Issue "Hardening" point 4: with the registry gone, a tag still resolves to
// the digest it had (marked x-shoal-stale), for a credential the registry
// answered before, with the same Accept; nothing else is made up.
test('a stopped registry: tags answer from their last known digest with x-shoal-stale, only for what was answered before', async (t) => {
  const upstream = await startUpstream();
  t.teardown(() => upstream.stop());
  const plainHttpHosts = [upstream.registry.host];
  const proxy = await startProxy({ blobs: new FakeSwarmRejecting(), plainHttpHosts });
  t.teardown(() => proxy.close());
  const disabled = await startProxy({ blobs: new FakeSwarmRejecting(), plainHttpHosts, init: { staleIfErrorMs: 0, grantMemoryMs: 0 } });
  t.teardown(() => disabled.close());
  const accept = { accept: MANIFEST_ACCEPT };
  const tagPath = manifestPath(upstream, upstream.tag);

  let digest = '';
  let manifest: Buffer = Buffer.alloc(0);
  for (const p of [proxy, disabled]) {
    const head = await fetchAll(`${p.url}${tagPath}`, { method: 'HEAD', headers: accept });
    t.is(head.statusCode, 200);
    t.is(head.headers[HEADER.stale], undefined, 'a live answer is not marked stale');
    digest = head.headers['docker-content-digest'] ?? '';
    const get = await fetchAll(`${p.url}${tagPath}`, { headers: accept });
    t.is(get.statusCode, 200);
    manifest = get.body;
    t.is((await fetchAll(`${p.url}${manifestPath(upstream, digest)}`, { headers: accept })).statusCode, 200);
  }
  t.is(String(digestOf(manifest)), digest);

  await upstream.registry.process.stop();
  // The 60 s access cache would serve the digest anyway: forget it, so what answers is the grant memory.
  proxy.app.shoalProxy.upstream.access.clear();
  disabled.app.shoalProxy.upstream.access.clear();

  const head = await fetchAll(`${proxy.url}${tagPath}`, { method: 'HEAD', headers: accept });
  t.is(head.statusCode, 200);
  t.is(head.headers['docker-content-digest'], digest);
  t.is(head.headers['content-length'], String(manifest.length));
  t.truthy(head.headers['content-type']);
  t.regex(head.headers[HEADER.stale] ?? '', /^\d+$/);
  const get = await fetchAll(`${proxy.url}${tagPath}`, { headers: accept });
  t.is(get.statusCode, 200);
  t.deepEqual(get.body, manifest);
  t.regex(get.headers[HEADER.stale] ?? '', /^\d+$/);
  const byDigest = await fetchAll(`${proxy.url}${manifestPath(upstream, digest)}`, { headers: accept });
  t.is(byDigest.statusCode, 200, 'the manifest by digest is served on the remembered grant');
  t.deepEqual(byDigest.body, manifest);

  // Nothing that was not answered before.
  const unknown = async (url: string, headers: Record<string, string>): Promise<void> => {
    const response = await fetchAll(url, { headers });
    t.true(response.statusCode >= 500, `${url} ${JSON.stringify(headers)}: ${response.statusCode}`);
    t.is(response.headers[HEADER.stale], undefined);
  };
  await unknown(`${proxy.url}${tagPath}`, { ...accept, authorization: 'Basic b3RoZXI6b3RoZXI=' });
  await unknown(`${proxy.url}${tagPath}`, { accept: 'application/vnd.oci.image.manifest.v1+json' });
  await unknown(`${proxy.url}${manifestPath(upstream, 'other-tag')}`, accept);
  await unknown(`${disabled.url}${tagPath}`, accept);
  await unknown(`${disabled.url}${manifestPath(upstream, digest)}`, accept);
});
