import test from 'ava';
import { MANIFEST_ACCEPT } from '@shoal/core';
import { buildImage, makeTempDir, pushImage, removeTempDir, requireTools, startRegistry } from '../src/index.js';

test('skopeo pushes a built image; the registry serves its manifest and counts blob GETs', async (t) => {
  await requireTools(['docker-registry', 'skopeo']);
  const dir = await makeTempDir('registry-push-test');
  t.teardown(() => removeTempDir(dir));
  const registry = await startRegistry();
  t.teardown(() => registry.stop());
  t.regex(registry.host, /^127\.0\.0\.1:\d+$/);
  t.is(registry.url, `http://${registry.host}`);

  const image = await buildImage({ dir, tag: 'v1', layers: [{ sizeBytes: 2 * 1024 * 1024, seed: 'push-1' }, { sizeBytes: 1024 * 1024, seed: 'push-2' }] });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: 'test/app' });

  const manifest = await fetch(`${registry.url}/v2/test/app/manifests/v1`, { headers: { accept: MANIFEST_ACCEPT } });
  t.is(manifest.status, 200);
  t.is(manifest.headers.get('docker-content-digest'), image.digest);
  await manifest.arrayBuffer();

  const layer = image.layers[0];
  if (layer === undefined) throw new Error('no layer');
  t.is((await registry.blobGets()).get(layer.digest), undefined);
  const blob = await fetch(`${registry.url}/v2/test/app/blobs/${layer.digest}`);
  t.is(blob.status, 200);
  t.is((await blob.arrayBuffer()).byteLength, layer.sizeBytes);
  // A HEAD and a 404 are not counted.
  await (await fetch(`${registry.url}/v2/test/app/blobs/${layer.digest}`, { method: 'HEAD' })).arrayBuffer();
  await (await fetch(`${registry.url}/v2/test/app/blobs/sha256:${'0'.repeat(64)}`)).arrayBuffer();

  // The log line is written once the response completes; give it a moment.
  let gets = new Map();
  for (let i = 0; i < 40 && gets.get(layer.digest) !== 1; i++) {
    gets = await registry.blobGets();
    await new Promise((r) => setTimeout(r, 50));
  }
  t.is(gets.get(layer.digest), 1);
  t.is(gets.size, 1);
  const requests = await registry.requests();
  t.true(requests.some((r) => r.method === 'HEAD' && r.digest === layer.digest));
});

test('a multi-platform image pushes as an index', async (t) => {
  await requireTools(['docker-registry', 'skopeo']);
  const dir = await makeTempDir('registry-push-test');
  t.teardown(() => removeTempDir(dir));
  const registry = await startRegistry();
  t.teardown(() => registry.stop());
  const image = await buildImage({
    dir,
    tag: 'multi',
    layers: [{ sizeBytes: 100_000, seed: 'm' }],
    platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }],
  });
  await pushImage({ layoutDir: dir, tag: 'multi', registry: registry.host, repository: 'test/multi' });
  const response = await fetch(`${registry.url}/v2/test/multi/manifests/multi`, { headers: { accept: MANIFEST_ACCEPT } });
  t.is(response.status, 200);
  t.is(response.headers.get('docker-content-digest'), image.indexDigest ?? null);
  const index = (await response.json()) as { manifests: Array<{ digest: string }> };
  t.deepEqual(index.manifests.map((m) => m.digest).sort(), Object.values(image.manifestDigests).sort());
});
