import test from 'ava';
import { join } from 'node:path';
import { parseImageReference } from '@shoal/core';
import { pullImage } from '@shoal/cli';
import { buildImage, pushImage, requireTools, waitFor } from '@shoal/testkit';
import { startCluster } from './helpers/cluster.js';
import { metricValue } from './helpers/metrics.js';
import { spawnNode } from './helpers/processes.js';

// A parent peer dies (SIGKILL) while a child is fetching pieces from it: the
// child's stalled pieces go to the next candidate within seconds and its pull
// completes with correct content; the registry still sends each blob once.
test('a parent killed mid-transfer is replaced; the pull completes', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const cluster = await startCluster({ nodes: 1 });
  t.teardown(() => cluster.close());
  const image = await buildImage({ dir: join(cluster.dir, 'layout'), tag: 'v1', layers: [{ sizeBytes: 24 * 1024 * 1024, seed: 'parent-killed' }] });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: cluster.registry.host, repository: 'faults/parent' });
  const ref = `${cluster.registry.host}/faults/parent:v1`;

  // The parent: a real process with a slow uplink, so transfers from it are in flight when it dies.
  const parent = await spawnNode(cluster.dir, 'parent', cluster.supernode.url, cluster.registry.host, { SHOAL_UPLOAD_BYTES_PER_SEC: String(3 * 1024 * 1024) });
  t.teardown(() => parent.kill());
  await pullImage({ proxyUrl: parent.url, image: parseImageReference(ref), platform: 'linux/amd64' });

  const child = cluster.nodes[0];
  if (child === undefined) throw new Error('a node expected');
  const pulling = child.containerd.pull(ref, { hostsDir: child.containerd.hostsDir });
  await waitFor(async () => (await metricValue(child.agent.peerUrl, 'shoal_peer_piece_bytes_total', { from: 'peer' })) > 0, { timeoutMs: 20_000, description: 'child fetching from the parent' });
  await parent.kill();
  const killedAt = Date.now();
  await pulling;
  t.true(await child.containerd.imageUnpacked(ref), 'the child has the image, unpacked (content verified by containerd)');
  t.true((await metricValue(child.agent.peerUrl, 'shoal_peer_piece_bytes_total', { from: 'peer' })) > 0, 'some pieces came from the parent');
  t.true((await metricValue(child.agent.peerUrl, 'shoal_peer_piece_bytes_total', { from: 'supernode' })) > 0, 'the rest came from the seed after the parent died');
  t.log(`pull finished ${Date.now() - killedAt} ms after the parent was killed`);
  const gets = await cluster.registry.blobGets();
  t.is(gets.get(image.layers[0]?.digest ?? ('' as never)) ?? 0, 1, 'the layer left the registry once');
});
