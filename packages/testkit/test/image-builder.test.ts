import test from 'ava';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { MediaType } from '@shoal/core';
import { buildImage, makeTempDir, removeTempDir } from '../src/index.js';

const MiB = 1024 * 1024;

function blobFile(layoutDir: string, digest: string): string {
  return join(layoutDir, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

function sha256(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

test('a 3 MiB two-layer image: digests match the files, layers are gzip tars of one file', async (t) => {
  const dir = await makeTempDir('image-builder-test');
  t.teardown(() => removeTempDir(dir));
  const image = await buildImage({ dir, tag: 'v1', layers: [{ sizeBytes: 2 * MiB, seed: 1 }, { sizeBytes: 1 * MiB, seed: 2 }] });

  t.is(image.layoutDir, dir);
  t.is(image.layers.length, 2);
  t.is(image.indexDigest, undefined);
  t.deepEqual(Object.values(image.manifestDigests), [image.digest]);
  t.deepEqual(JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });

  for (const [i, layer] of image.layers.entries()) {
    const blob = await readFile(blobFile(dir, layer.digest));
    t.is(sha256(blob), layer.digest);
    t.is(blob.length, layer.sizeBytes);
    const expected = i === 0 ? 2 * MiB : MiB;
    // Incompressible content: the blob is about as large as the file.
    t.true(Math.abs(blob.length - expected) < expected * 0.01, `blob ${blob.length} vs ${expected}`);
    const tar = gunzipSync(blob);
    t.is(sha256(tar), layer.diffId);
    t.is(tar.length % 512, 0);
    const name = tar.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    t.is(name, layer.fileName);
    t.is(tar.subarray(257, 262).toString('ascii'), 'ustar');
    t.is(Number.parseInt(tar.subarray(124, 135).toString('ascii'), 8), expected);
    // Header checksum.
    const header = Buffer.from(tar.subarray(0, 512));
    const stored = Number.parseInt(header.subarray(148, 154).toString('ascii'), 8);
    header.fill(0x20, 148, 156);
    t.is(header.reduce((a, b) => a + b, 0), stored);
    // One entry, then only zero blocks.
    const after = 512 + Math.ceil(expected / 512) * 512;
    t.true(tar.length >= after + 1024);
    t.true(tar.subarray(after).every((b) => b === 0));
  }

  const manifestBytes = await readFile(blobFile(dir, image.digest));
  t.is(sha256(manifestBytes), image.digest);
  const manifest = JSON.parse(manifestBytes.toString('utf8')) as { mediaType: string; config: { digest: string }; layers: Array<{ digest: string; size: number }> };
  t.is(manifest.mediaType, MediaType.ociManifest);
  t.is(manifest.config.digest, image.configDigest);
  t.deepEqual(manifest.layers.map((l) => [l.digest, l.size]), image.layers.map((l) => [l.digest, l.sizeBytes]));
  const config = JSON.parse(await readFile(blobFile(dir, image.configDigest), 'utf8')) as { rootfs: { diff_ids: string[] } };
  t.deepEqual(config.rootfs.diff_ids, image.layers.map((l) => l.diffId));

  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations: Record<string, string> }> };
  t.is(index.manifests.length, 1);
  t.is(index.manifests[0]?.digest, image.digest);
  t.is(index.manifests[0]?.annotations['org.opencontainers.image.ref.name'], 'v1');
});

test('deterministic: the same seed and size give the same layer digest', async (t) => {
  const a = await makeTempDir('image-builder-test');
  const b = await makeTempDir('image-builder-test');
  t.teardown(() => Promise.all([removeTempDir(a), removeTempDir(b)]));
  const one = await buildImage({ dir: a, tag: 'x', layers: [{ sizeBytes: 100_000, seed: 'same' }] });
  const two = await buildImage({ dir: b, tag: 'y', layers: [{ sizeBytes: 100_000, seed: 'same' }, { sizeBytes: 1000, seed: 'other' }] });
  t.is(one.layers[0]?.digest, two.layers[0]?.digest);
  t.not(two.layers[0]?.digest, two.layers[1]?.digest);
});

test('a multi-platform image is an index listing one manifest per platform', async (t) => {
  const dir = await makeTempDir('image-builder-test');
  t.teardown(() => removeTempDir(dir));
  const image = await buildImage({
    dir,
    tag: 'multi',
    layers: [{ sizeBytes: 64 * 1024, seed: 7 }],
    platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }],
  });
  t.truthy(image.indexDigest);
  t.is<string | undefined, string | undefined>(image.digest, image.indexDigest);
  t.deepEqual(Object.keys(image.manifestDigests).sort(), ['linux/amd64', 'linux/arm64']);
  // Layers differ per platform by seed.
  t.not(image.platforms[0]?.layers[0]?.digest, image.platforms[1]?.layers[0]?.digest);

  const indexBytes = await readFile(blobFile(dir, image.indexDigest ?? ''));
  t.is<string | undefined, string | undefined>(sha256(indexBytes), image.indexDigest);
  const index = JSON.parse(indexBytes.toString('utf8')) as { mediaType: string; manifests: Array<{ digest: string; mediaType: string; platform: { os: string; architecture: string } }> };
  t.is(index.mediaType, MediaType.ociIndex);
  t.is(index.manifests.length, 2);
  for (const m of index.manifests) {
    t.is(m.mediaType, MediaType.ociManifest);
    t.is<string | undefined, string | undefined>(image.manifestDigests[`${m.platform.os}/${m.platform.architecture}`], m.digest);
  }
  const layout = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; mediaType: string }> };
  t.is(layout.manifests[0]?.digest, image.indexDigest);
  t.is(layout.manifests[0]?.mediaType, MediaType.ociIndex);
});
