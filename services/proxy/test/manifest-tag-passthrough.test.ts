import test from 'ava';
import { MANIFEST_ACCEPT, MediaType, digestOf } from '@shoal/core';
import { FakeSwarmRejecting } from './helpers/fake-swarm.js';
import { fetchAll, manifestPath, startProxy, startUpstream } from './helpers/fixture.js';

const COMPARED_HEADERS = ['content-type', 'docker-content-digest', 'content-length', 'etag', 'docker-distribution-api-version'];

test('HEAD and GET of a manifest by tag pass the exact upstream answer through', async (t) => {
  const upstream = await startUpstream();
  t.teardown(() => upstream.stop());
  const proxy = await startProxy({ blobs: new FakeSwarmRejecting(), plainHttpHosts: [upstream.registry.host] });
  t.teardown(() => proxy.close());
  const headers = { accept: MANIFEST_ACCEPT };

  for (const method of ['HEAD', 'GET'] as const) {
    const direct = await fetchAll(`${upstream.registry.url}/v2/${upstream.repository}/manifests/${upstream.tag}`, { method, headers });
    const viaProxy = await fetchAll(`${proxy.url}${manifestPath(upstream, upstream.tag)}`, { method, headers });
    t.is(viaProxy.statusCode, 200, method);
    t.is(viaProxy.statusCode, direct.statusCode, method);
    for (const name of COMPARED_HEADERS) t.is(viaProxy.headers[name], direct.headers[name], `${method} ${name}`);
    t.true(viaProxy.body.equals(direct.body), method);
    t.is(viaProxy.headers['docker-content-digest'], upstream.image.digest, method);
    t.is(viaProxy.headers['content-type'], MediaType.ociManifest, method);
  }
  const got = await fetchAll(`${proxy.url}${manifestPath(upstream, upstream.tag)}`, { headers });
  t.is(digestOf(got.body), upstream.image.digest);
  t.is(got.headers['content-length'], String(got.body.length));
});
