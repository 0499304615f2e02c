import test from 'ava';
import { join } from 'node:path';
import { buildImage, pushImage, requireTools } from '@shoal/testkit';
import { startCluster } from './helpers/cluster.js';
import { metricValue } from './helpers/metrics.js';

// A node that evicts a blob tells the supernode at once, so no other node is sent
// there for its pieces: without the notice, every child would first meet a 404
// from the evicter and only then try the next parent.
test('a blob evicted on one node is no longer scheduled from it', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const MiB = 1024 * 1024;
  // node0's cache holds one of the two images; node1's has room for anything.
  const cluster = await startCluster({ nodes: 2, node: (index) => (index === 0 ? { quotaBytes: 10 * MiB } : {}) });
  t.teardown(() => cluster.close());
  const [node0, node1] = cluster.nodes;
  if (node0 === undefined || node1 === undefined) throw new Error('two nodes expected');
  const push = async (name: string): Promise<string> => {
    const image = await buildImage({ dir: join(cluster.dir, `layout-${name}`), tag: 'v1', layers: [{ sizeBytes: 5 * MiB, seed: `dropped-${name}` }] });
    await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: cluster.registry.host, repository: `dropped/${name}` });
    return `${cluster.registry.host}/dropped/${name}:v1`;
  };
  const [a, b] = [await push('a'), await push('b')];

  await node0.containerd.pull(a, { hostsDir: node0.containerd.hostsDir });
  await node0.containerd.pull(b, { hostsDir: node0.containerd.hostsDir });
  t.true((await metricValue(node0.agent.peerUrl, 'shoal_peer_cache_bytes')) <= 10 * MiB, "a's layer was evicted from node0 to make room for b's");

  await node1.containerd.pull(a, { hostsDir: node1.containerd.hostsDir });
  t.true(await node1.containerd.imageUnpacked(a));
  t.is(await metricValue(node0.agent.peerUrl, 'shoal_peer_pieces_missing_total'), 0, 'node1 was never sent to node0 for pieces it had evicted');
  t.true((await metricValue(node1.agent.peerUrl, 'shoal_peer_piece_bytes_total', { from: 'supernode' })) >= 5 * MiB, "node1 got a's layer from the supernode");
});
