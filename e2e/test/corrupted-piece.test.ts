import test from 'ava';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseImageReference } from '@shoal/core';
import { pullImage } from '@shoal/cli';
import { buildImage, pushImage, requireTools, waitFor } from '@shoal/testkit';
import { startCluster } from './helpers/cluster.js';
import { metricValue } from './helpers/metrics.js';

// A peer holds corrupted bytes (disk rot, or malice): a child that fetches
// pieces from it detects every bad piece before storing it, reports the
// parent, and gets the pieces elsewhere; containerd sees only correct bytes.
test('corrupted pieces on a peer are rejected and fetched elsewhere', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const cluster = await startCluster({ nodes: 2 });
  t.teardown(() => cluster.close());
  const image = await buildImage({ dir: join(cluster.dir, 'layout'), tag: 'v1', layers: [{ sizeBytes: 12 * 1024 * 1024, seed: 'corrupt' }] });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: cluster.registry.host, repository: 'faults/corrupt' });
  const ref = `${cluster.registry.host}/faults/corrupt:v1`;
  const [bad, child] = cluster.nodes;
  const layer = image.layers[0];
  if (bad === undefined || child === undefined || layer === undefined) throw new Error('setup');

  await pullImage({ proxyUrl: bad.agent.proxyUrl, image: parseImageReference(ref), platform: 'linux/amd64' });
  // The pull ends once the bytes matched the digest; the file reaches blobs/ a moment later (datasync, rename).
  const path = join(cluster.dir, 'node0', 'store', 'blobs', 'sha256', layer.digest.slice(7));
  await waitFor(() => stat(path).then(() => true, () => false), { timeoutMs: 20_000, description: 'blob stored on the bad peer' });
  // Flip a byte in every MiB of the stored blob: whatever piece the child asks this peer for is wrong.
  const file = await open(path, 'r+');
  for (let offset = 100; offset < layer.sizeBytes; offset += 1024 * 1024) {
    const one = Buffer.alloc(1);
    await file.read(one, 0, 1, offset);
    one[0] = (one[0] ?? 0) ^ 0xff;
    await file.write(one, 0, 1, offset);
  }
  await file.close();

  await child.containerd.pull(ref, { hostsDir: child.containerd.hostsDir });
  t.true(await child.containerd.imageUnpacked(ref), 'the child has the image, unpacked: every byte was right');
  t.true((await metricValue(cluster.supernode.url, 'shoal_supernode_bad_piece_reports_total')) >= 1, 'the bad parent was reported');
  t.true((await metricValue(child.agent.peerUrl, 'shoal_peer_piece_bytes_total', { from: 'supernode' })) >= layer.sizeBytes - 1024 * 1024, 'the pieces came from the seed instead');
});
