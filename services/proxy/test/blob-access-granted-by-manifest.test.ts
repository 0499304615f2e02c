import test from 'ava';
import { MANIFEST_ACCEPT, digestOf, parseManifest } from '@shoal/core';
import { FakeSwarmFromRegistry } from './helpers/fake-swarm.js';
import { basicAuth, blobPath, fetchAll, manifestPath, startProxy, startUpstream } from './helpers/fixture.js';

const accept = { accept: MANIFEST_ACCEPT };

test('an image manifest the registry served grants its blobs to that credential: no HEAD per blob, other credentials still checked', async (t) => {
  const credentials = { username: 'shoal', password: 'p@ss-word' };
  const upstream = await startUpstream({
    htpasswd: credentials,
    layers: [
      { sizeBytes: 200_000, seed: 'granted-a' },
      { sizeBytes: 100_000, seed: 'granted-b' },
    ],
  });
  t.teardown(() => upstream.stop());
  const swarm = new FakeSwarmFromRegistry(upstream.client);
  const proxy = await startProxy({ blobs: swarm, plainHttpHosts: [upstream.registry.host] });
  t.teardown(() => proxy.close());
  const authorization = basicAuth(credentials);
  const blobs = [upstream.image.configDigest, ...upstream.image.layers.map((l) => l.digest)];

  // As containerd: resolve the tag, fetch the manifest by digest, then every blob.
  t.is((await fetchAll(`${proxy.url}${manifestPath(upstream, upstream.tag)}`, { method: 'HEAD', headers: { ...accept, authorization } })).statusCode, 200);
  const manifest = await fetchAll(`${proxy.url}${manifestPath(upstream, upstream.image.digest)}`, { headers: { ...accept, authorization } });
  t.is(manifest.statusCode, 200);
  const sizes = new Map<string, number>();
  const parsed = parseManifest(manifest.body, manifest.headers['content-type'], 'test');
  if (parsed.kind !== 'manifest') throw new Error('expected an image manifest');
  for (const d of [parsed.config, ...parsed.layers]) sizes.set(d.digest, d.sizeBytes);
  for (const digest of blobs) {
    const head = await fetchAll(`${proxy.url}${blobPath(upstream, digest)}`, { method: 'HEAD', headers: { authorization } });
    t.is(head.statusCode, 200, digest);
    t.is(head.headers['content-length'], String(sizes.get(digest)), digest);
    const blob = await fetchAll(`${proxy.url}${blobPath(upstream, digest)}`, { headers: { authorization } });
    t.is(blob.statusCode, 200, digest);
    t.is(digestOf(blob.body), digest);
  }
  const blobHeads = (await upstream.registry.requests()).filter((r) => r.method === 'HEAD' && r.digest !== undefined && blobs.includes(r.digest) && r.status === 200);
  t.deepEqual(blobHeads, [], 'the manifest answered for every blob it names');
  t.is(swarm.calls.length, blobs.length);

  // The grant is the credential's: anonymous and a wrong password are still asked upstream, and refused.
  const layer = blobs[1] as string;
  const anonymous = await fetchAll(`${proxy.url}${blobPath(upstream, layer)}`);
  t.is(anonymous.statusCode, 401);
  const wrong = await fetchAll(`${proxy.url}${blobPath(upstream, layer)}`, { headers: { authorization: basicAuth({ username: 'shoal', password: 'wrong' }) } });
  t.is(wrong.statusCode, 401);
  t.is(swarm.calls.length, blobs.length, 'the swarm was not asked for a refused credential');
});

test('an index grants nothing: the blobs of its platform manifests are granted once that manifest is served', async (t) => {
  const upstream = await startUpstream({
    platforms: [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ],
  });
  t.teardown(() => upstream.stop());
  const proxy = await startProxy({ blobs: new FakeSwarmFromRegistry(upstream.client), plainHttpHosts: [upstream.registry.host] });
  t.teardown(() => proxy.close());
  const [amd64, arm64] = upstream.image.platforms;
  if (amd64 === undefined || arm64 === undefined || upstream.image.indexDigest === undefined) throw new Error('expected a two-platform index');
  const blobHeadsOf = async (digest: string): Promise<number> =>
    (await upstream.registry.requests()).filter((r) => r.method === 'HEAD' && r.digest === digest && r.status === 200).length;

  t.is((await fetchAll(`${proxy.url}${manifestPath(upstream, upstream.image.indexDigest)}`, { headers: accept })).statusCode, 200);
  t.is((await fetchAll(`${proxy.url}${manifestPath(upstream, amd64.manifestDigest)}`, { headers: accept })).statusCode, 200);
  // amd64's manifest was served: its layer needs no HEAD. arm64's was not: its layer is checked.
  for (const digest of [amd64.layers[0]?.digest, arm64.layers[0]?.digest]) {
    if (digest === undefined) throw new Error('a platform without layers');
    const blob = await fetchAll(`${proxy.url}${blobPath(upstream, digest)}`);
    t.is(blob.statusCode, 200);
    t.is(digestOf(blob.body), digest);
  }
  t.is(await blobHeadsOf(amd64.layers[0]?.digest as string), 0);
  t.is(await blobHeadsOf(arm64.layers[0]?.digest as string), 1);
});
