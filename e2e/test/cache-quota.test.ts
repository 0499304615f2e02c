import test from 'ava';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { buildImage, pushImage, requireTools, waitFor } from '@shoal/testkit';
import { startCluster } from './helpers/cluster.js';
import { counterByLabel, metricValue } from './helpers/metrics.js';

// A node's cache has a quota: older idle blobs are evicted to make room, and a
// blob that cannot fit is streamed through from the registry; the pull never fails
// and nothing partial stays on disk.
test('a full node cache evicts old blobs or streams through; pulls still succeed', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const MiB = 1024 * 1024;
  const cluster = await startCluster({ nodes: 1, node: { quotaBytes: 10 * MiB } });
  t.teardown(() => cluster.close());
  const node = cluster.nodes[0];
  if (node === undefined) throw new Error('a node expected');
  const push = async (name: string, sizeBytes: number): Promise<string> => {
    const image = await buildImage({ dir: join(cluster.dir, `layout-${name}`), tag: 'v1', layers: [{ sizeBytes, seed: `quota-${name}` }] });
    await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: cluster.registry.host, repository: `quota/${name}` });
    return `${cluster.registry.host}/quota/${name}:v1`;
  };
  const [a, b, huge] = [await push('a', 5 * MiB), await push('b', 5 * MiB), await push('huge', 12 * MiB)];

  await node.containerd.pull(a, { hostsDir: node.containerd.hostsDir });
  await node.containerd.pull(b, { hostsDir: node.containerd.hostsDir });
  t.true((await metricValue(node.agent.peerUrl, 'shoal_peer_cache_bytes')) <= 10 * MiB, 'the cache stayed within its quota (the older blob was evicted)');

  await node.containerd.pull(huge, { hostsDir: node.containerd.hostsDir });
  for (const ref of [a, b, huge]) t.true(await node.containerd.imageUnpacked(ref), `${ref} pulled`);
  const sources = await counterByLabel(node.agent.proxyUrl, 'shoal_proxy_blob_bytes_total', 'source');
  t.true((sources.get('upstream') ?? 0) >= 12 * MiB, 'the blob larger than the quota was streamed through from the registry');
  // A blob's file moves out of partial/ a moment after its last bytes were served (datasync, rename).
  const partialDir = join(cluster.dir, 'node0', 'store', 'partial', 'sha256');
  const partial = async (): Promise<string[]> => readdir(partialDir).catch(() => []);
  await waitFor(async () => (await partial()).length === 0, { timeoutMs: 20_000, description: 'partial files settled' }).catch(() => undefined);
  t.deepEqual(await partial(), [], 'nothing partial kept');
});
