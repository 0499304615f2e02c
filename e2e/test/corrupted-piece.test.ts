import test from 'ava';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseImageReference } from '@shoal/core';
import { pullImage } from '@shoal/cli';
import { buildImage, pushImage, requireTools, waitFor } from '@shoal/testkit';
import { startCluster } from './helpers/cluster.js';
import { metricValue } from './helpers/metrics.js';

// A peer's stored blob rots on disk: the peer checks every piece as it reads it
// for sending, so it sends no wrong byte (it drops the blob and answers the piece
// as not held), and the child gets the pieces elsewhere; containerd sees only
// correct bytes. (A child still checks every piece it receives against the
// supernode's hash, and reports a parent that sends wrong bytes.)
test('corrupted pieces on a peer are never sent, and the child gets them elsewhere', async (t) => {
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
  t.is(await metricValue(cluster.supernode.url, 'shoal_supernode_bad_piece_reports_total'), 0, 'no wrong piece left the rotten peer, so there was nothing to report');
  t.false(await stat(path).then(() => true, () => false), 'the rotten peer dropped its copy');
  t.true((await metricValue(child.agent.peerUrl, 'shoal_peer_piece_bytes_total', { from: 'supernode' })) >= layer.sizeBytes - 1024 * 1024, 'the pieces came from the seed instead');
});
