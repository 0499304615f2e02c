import test from 'ava';
import { MediaType } from '@shoal/core';
import { FakeSwarmRejecting } from './helpers/fake-swarm.js';
import { fetchAll, manifestPath, startProxy, startUpstream } from './helpers/fixture.js';

test('Accept is forwarded exactly: a tag naming an OCI index answers the index or not, as upstream decides', async (t) => {
  const upstream = await startUpstream({
    platforms: [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
    ],
    layers: [{ sizeBytes: 10_000, seed: 'accept-test' }],
  });
  t.teardown(() => upstream.stop());
  const proxy = await startProxy({ blobs: new FakeSwarmRejecting(), plainHttpHosts: [upstream.registry.host] });
  t.teardown(() => proxy.close());
  const indexDigest = upstream.image.indexDigest;
  if (indexDigest === undefined) throw new Error('expected an index');

  // The index when the client accepts it.
  const asIndex = { accept: `${MediaType.ociIndex}, ${MediaType.ociManifest}` };
  const index = await fetchAll(`${proxy.url}${manifestPath(upstream, upstream.tag)}`, { headers: asIndex });
  t.is(index.statusCode, 200);
  t.is(index.headers['content-type'], MediaType.ociIndex);
  t.is(index.headers['docker-content-digest'], indexDigest);
  const directIndex = await fetchAll(`${upstream.registry.url}/v2/${upstream.repository}/manifests/${upstream.tag}`, { headers: asIndex });
  t.true(index.body.equals(directIndex.body));

  // A client that only accepts single manifests gets what the registry gives it (distribution: 404 MANIFEST_UNKNOWN).
  const manifestOnly = { accept: MediaType.ociManifest };
  const narrow = await fetchAll(`${proxy.url}${manifestPath(upstream, upstream.tag)}`, { headers: manifestOnly });
  const directNarrow = await fetchAll(`${upstream.registry.url}/v2/${upstream.repository}/manifests/${upstream.tag}`, { headers: manifestOnly });
  t.is(narrow.statusCode, directNarrow.statusCode);
  t.not(narrow.headers['content-type'], MediaType.ociIndex);
  t.true(narrow.body.equals(directNarrow.body));

  // A platform manifest by digest is a single manifest.
  const platformDigest = upstream.image.manifestDigests['linux/arm64'];
  if (platformDigest === undefined) throw new Error('no arm64 manifest');
  const single = await fetchAll(`${proxy.url}${manifestPath(upstream, platformDigest)}`, { headers: { accept: `${MediaType.ociManifest}, */*` } });
  t.is(single.statusCode, 200);
  t.is(single.headers['content-type'], MediaType.ociManifest);
  t.is(single.headers['docker-content-digest'], platformDigest);
});
