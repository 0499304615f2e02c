import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { writeContainerdConfig } from '@shoal/cli';
import { buildImage, pushImage, requireTools, servedBlobs, startContainerd } from '@shoal/testkit';
import { startCluster } from './helpers/cluster.js';

// A blob whose cached file changed on a node's disk (16 bytes flipped) was served
// by that node's proxy with the full length, the wrong bytes and
// `X-Shoal-Source: local`; containerd, which does not fall back on a digest
// mismatch, then failed every pull of the image with "unexpected commit digest".
// Now every piece is checked as it leaves the disk: a response not yet started
// is served from the swarm instead, one already started is cut and containerd's
// Range resume gets a fresh copy. The registry sends nothing more, so the pull
// cannot have passed by containerd's silent fallback to `server`.
test('a blob corrupted on a node is still pulled correctly by containerd through that node', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const MiB = 1024 * 1024;
  const cluster = await startCluster({ nodes: 1 });
  t.teardown(() => cluster.close());
  const [node] = cluster.nodes;
  if (node === undefined) throw new Error('one node expected');
  const image = await buildImage({
    dir: join(cluster.dir, 'layout'),
    tag: 'v1',
    layers: [
      // Corrupted in its first piece: the node sees it before answering.
      { sizeBytes: 3 * MiB + 123, seed: 'rest-first' },
      // Corrupted in its fifth piece: the node has sent four pieces already.
      { sizeBytes: 6 * MiB + 77, seed: 'rest-later' },
    ],
  });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: cluster.registry.host, repository: 'rest/app' });
  const ref = `${cluster.registry.host}/rest/app:v1`;
  const [first, later] = image.layers;
  if (first === undefined || later === undefined) throw new Error('two layers expected');

  // The node caches the image (one pull), then two of its cached files rot.
  await node.containerd.pull(ref, { hostsDir: node.containerd.hostsDir });
  const storeDir = join(cluster.dir, 'node0', 'store', 'blobs', 'sha256');
  await flipBytes(join(storeDir, first.digest.slice(7)), 100);
  await flipBytes(join(storeDir, later.digest.slice(7)), 4 * MiB + MiB / 2);
  const registryBefore = await cluster.registry.blobGets();

  // A second containerd (empty content store) pulls through the same node.
  const fresh = await startContainerd({ name: 'node0-fresh' });
  t.teardown(() => fresh.stop());
  await writeContainerdConfig({ certsDir: fresh.hostsDir, proxyUrl: node.agent.proxyUrl, registries: [], plainHttpHosts: [cluster.registry.host] });
  const pull = await fresh.pull(ref, { hostsDir: fresh.hostsDir, debug: true });
  t.true(await fresh.imageUnpacked(ref), 'containerd has the image, unpacked');

  const proxyHost = new URL(node.agent.proxyUrl).host;
  const served = servedBlobs(pull.requests());
  for (const layer of [first, later]) {
    const r = served.get(layer.digest);
    t.is(r?.host, proxyHost, `containerd got ${layer.digest} from the node's proxy`);
    t.is(r?.headers?.['x-shoal-source'], 'supernode', `${layer.digest} came from the swarm, not the rotten local copy`);
  }
  const laterGets = pull.requests().filter((r) => r.digest === later.digest && r.method === 'GET' && r.host === proxyHost);
  t.true(laterGets.length >= 2, 'the later layer was cut after its first pieces and resumed');
  t.is(laterGets[0]?.headers?.['x-shoal-source'], 'local', 'the later layer started from the local copy');

  // The registry sent nothing more: no fallback, by the proxy or by containerd.
  const registryAfter = await cluster.registry.blobGets();
  for (const digest of [image.configDigest, first.digest, later.digest]) {
    t.is(registryAfter.get(digest) ?? 0, registryBefore.get(digest) ?? 0, `the registry did not send ${digest} again`);
  }
  // The node holds sound copies again.
  for (const layer of [first, later]) {
    const bytes = await readFile(join(storeDir, layer.digest.slice(7)));
    t.is(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, layer.digest, `the node's copy of ${layer.digest} is sound again`);
  }
});

/** Flips 16 bytes of a file at `offset`, keeping its size. */
async function flipBytes(path: string, offset: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const bytes = Buffer.alloc(16);
    await fh.read(bytes, 0, 16, offset);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (bytes[i] ?? 0) ^ 0xff;
    await fh.write(bytes, 0, 16, offset);
  } finally {
    await fh.close();
  }
}
