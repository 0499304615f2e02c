import test from 'ava';
import { HEADER, MANIFEST_ACCEPT, digestOf } from '@shoal/core';
import { FakeSwarmFromRegistry } from './helpers/fake-swarm.js';
import { basicAuth, blobPath, fetchAll, manifestPath, startProxy, startUpstream } from './helpers/fixture.js';

interface OciBody {
  errors: Array<{ code: string }>;
}

test('htpasswd registry: 401 with www-authenticate without credentials, content with Basic', async (t) => {
  const credentials = { username: 'shoal', password: 'p@ss-word' };
  const upstream = await startUpstream({ htpasswd: credentials });
  t.teardown(() => upstream.stop());
  const swarm = new FakeSwarmFromRegistry(upstream.client);
  const proxy = await startProxy({ blobs: swarm, plainHttpHosts: [upstream.registry.host] });
  t.teardown(() => proxy.close());
  const layer = upstream.image.layers[0];
  if (layer === undefined) throw new Error('image has no layer');
  const authorization = basicAuth(credentials);
  const accept = { accept: MANIFEST_ACCEPT };

  // Tag resolution: the 401 comes back as it is, so containerd can answer the challenge.
  for (const method of ['HEAD', 'GET'] as const) {
    const anonymous = await fetchAll(`${proxy.url}${manifestPath(upstream, upstream.tag)}`, { method, headers: accept });
    t.is(anonymous.statusCode, 401, method);
    t.regex(anonymous.headers['www-authenticate'] ?? '', /^Basic realm="shoal-testkit"/, method);
    const authorized = await fetchAll(`${proxy.url}${manifestPath(upstream, upstream.tag)}`, { method, headers: { ...accept, authorization } });
    t.is(authorized.statusCode, 200, method);
    t.is(authorized.headers['docker-content-digest'], upstream.image.digest, method);
  }
  // A manifest by digest is now cached, but never served to someone the registry refuses.
  const byDigest = await fetchAll(`${proxy.url}${manifestPath(upstream, upstream.image.digest)}`, { headers: { ...accept, authorization } });
  t.is(byDigest.statusCode, 200);
  t.is(digestOf(byDigest.body), upstream.image.digest);
  const byDigestAnonymous = await fetchAll(`${proxy.url}${manifestPath(upstream, upstream.image.digest)}`, { headers: accept });
  t.is(byDigestAnonymous.statusCode, 401);
  t.regex(byDigestAnonymous.headers['www-authenticate'] ?? '', /^Basic /);
  const wrong = await fetchAll(`${proxy.url}${manifestPath(upstream, upstream.image.digest)}`, {
    headers: { ...accept, authorization: basicAuth({ username: 'shoal', password: 'wrong' }) },
  });
  t.is(wrong.statusCode, 401);

  // Blobs: refused without credentials, before the swarm is asked.
  const blobAnonymous = await fetchAll(`${proxy.url}${blobPath(upstream, layer.digest)}`);
  t.is(blobAnonymous.statusCode, 401);
  t.regex(blobAnonymous.headers['www-authenticate'] ?? '', /^Basic /);
  t.is((JSON.parse(blobAnonymous.body.toString()) as OciBody).errors[0]?.code, 'UNAUTHORIZED');
  t.is(swarm.calls.length, 0);

  // With Basic: served, and the swarm got the client's credential for back-to-source.
  const blob = await fetchAll(`${proxy.url}${blobPath(upstream, layer.digest)}`, { headers: { authorization } });
  t.is(blob.statusCode, 200);
  t.is(blob.headers[HEADER.source], 'peer');
  t.is(digestOf(blob.body), layer.digest);
  t.is(swarm.calls[0]?.request.registryAuthorization, authorization);
});
