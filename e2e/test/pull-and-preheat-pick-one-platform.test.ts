import test from 'ava';
import { join } from 'node:path';
import { createLogger, parseImageReference, type Digest } from '@shoal/core';
import { preheatImage, pullImage, startNodeAgent, startSupernode } from '@shoal/cli';
import { buildImage, makeTempDir, pushImage, removeTempDir, requireTools, startRegistry } from '@shoal/testkit';

// `shoal pull` matched an index's platforms by exact names while `shoal
// preheat` compared them in containerd's normal form, so the two picked
// different manifests: `linux/arm64/v8` found no manifest for pull in an index
// that lists `linux/arm64` (preheat warmed it), and `linux/arm` pulled the
// first arm entry (v6) where preheat warmed arm/v7. Both now ask the manifest
// layer; here the real commands' functions, against a real registry, a real
// supernode and a real node agent, must fetch and warm the same blobs.

const INDEX_PLATFORMS = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm', variant: 'v6' },
  { os: 'linux', architecture: 'arm', variant: 'v7' },
  { os: 'linux', architecture: 'arm64' },
];

/** Asked for → the index entry both commands must use (keyed as the test kit keys platforms). */
const CASES: ReadonlyArray<[string, string]> = [
  ['linux/arm64/v8', 'linux/arm64'],
  ['linux/arm64', 'linux/arm64'],
  ['linux/aarch64', 'linux/arm64'],
  ['linux/arm', 'linux/arm/v7'],
  ['linux/arm/v7', 'linux/arm/v7'],
  ['linux/arm/v6', 'linux/arm/v6'],
  ['linux/amd64', 'linux/amd64'],
  ['linux/x86_64', 'linux/amd64'],
];

test('shoal pull and shoal preheat choose the same manifest for linux/arm64/v8, linux/arm and their aliases', async (t) => {
  await requireTools(['docker-registry', 'skopeo']);
  const dir = await makeTempDir('pull-preheat-platform');
  t.teardown(() => removeTempDir(dir));
  const registry = await startRegistry();
  t.teardown(() => registry.stop());
  const image = await buildImage({ dir: join(dir, 'layout'), tag: 'multi', layers: [{ sizeBytes: 4096, seed: 'platforms' }], platforms: INDEX_PLATFORMS });
  await pushImage({ layoutDir: image.layoutDir, tag: 'multi', registry: registry.host, repository: 'test/multi' });
  const ref = `${registry.host}/test/multi:multi`;

  const log = createLogger({ name: 'test', level: 'silent' });
  const supernode = await startSupernode(log, { listen: '127.0.0.1:0', dataDir: join(dir, 'supernode'), plainHttpHosts: [registry.host], token: undefined });
  t.teardown(() => supernode.close());
  const agent = await startNodeAgent(log, {
    supernodeUrls: [supernode.url],
    peerListen: '127.0.0.1:0',
    advertise: undefined,
    dataDir: join(dir, 'node'),
    token: undefined,
    proxyListen: '127.0.0.1:0',
    plainHttpHosts: [registry.host],
  });
  t.teardown(() => agent.close());

  for (const [asked, expected] of CASES) {
    const entry = image.platforms.find((p) => p.key === expected);
    if (entry === undefined) throw new Error(`the index has no ${expected}`);
    const want = new Set<Digest>([entry.configDigest, ...entry.layers.map((l) => l.digest)]);
    const pulled = await pullImage({ proxyUrl: agent.proxyUrl, image: parseImageReference(ref), platform: asked });
    const preheated = await preheatImage({ supernodeUrl: supernode.url, image: ref, platforms: [asked], token: undefined });
    t.is(preheated.state, 'done', `${asked}: preheat ${preheated.message ?? ''}`);
    t.deepEqual(new Set(pulled.blobs.map((b) => b.digest)), want, `${asked}: shoal pull fetched ${expected}'s blobs`);
    t.deepEqual(new Set(preheated.blobs.map((b) => b.digest)), want, `${asked}: shoal preheat warmed ${expected}'s blobs`);
    t.is(pulled.manifestDigest, entry.manifestDigest, `${asked}: shoal pull used ${expected}'s manifest`);
  }
});
