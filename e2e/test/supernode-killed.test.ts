import test from 'ava';
import { join } from 'node:path';
import { buildImage, pushImage, requireTools, waitFor } from '@shoal/testkit';
import { startCluster } from './helpers/cluster.js';
import { counterByLabel, metricValue } from './helpers/metrics.js';
import { spawnSupernode, type ShoalProcess } from './helpers/processes.js';

// The only supernode dies (SIGKILL) while two nodes are mid-pull: both pulls
// still complete with correct content (the nodes go on without it).
test('the supernode killed mid-swarm: every pull completes', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  let supernode: ShoalProcess | undefined;
  const cluster = await startCluster({
    nodes: 2,
    // Slow downloads, so the kill lands mid-transfer.
    node: { downloadBytesPerSec: 4 * 1024 * 1024 },
    supernodeUrl: async (registry, dir) => {
      supernode = await spawnSupernode(dir, registry.host);
      const running = supernode;
      return { url: running.url, close: () => running.kill() };
    },
  });
  t.teardown(() => cluster.close());
  const image = await buildImage({ dir: join(cluster.dir, 'layout'), tag: 'v1', layers: [{ sizeBytes: 24 * 1024 * 1024, seed: 'supernode-killed' }, { sizeBytes: 3 * 1024 * 1024, seed: 'supernode-killed-2' }] });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: cluster.registry.host, repository: 'faults/supernode' });
  const ref = `${cluster.registry.host}/faults/supernode:v1`;
  const [a, b] = cluster.nodes;
  if (a === undefined || b === undefined || supernode === undefined) throw new Error('setup');
  const startedAt = performance.now();
  const pullSeconds: number[] = [];
  const pulls = [a, b].map((n, i) =>
    n.containerd.pull(ref, { hostsDir: n.containerd.hostsDir }).then((result) => {
      pullSeconds[i] = (performance.now() - startedAt) / 1000;
      return result;
    }),
  );
  const swarmBytes = async (url: string): Promise<number> => metricValue(url, 'shoal_peer_piece_bytes_total');
  await waitFor(async () => (await swarmBytes(a.agent.peerUrl)) + (await swarmBytes(b.agent.peerUrl)) > 4 * 1024 * 1024, { timeoutMs: 30_000, description: 'pulls under way' });
  await supernode.kill();
  await Promise.all(pulls);
  // Where the time went, for a slow run (it once took a minute in the full suite):
  // each node's pull, and its proxy's fallbacks by reason (first_byte_timeout is a 30 s wait).
  for (const [i, n] of [a, b].entries()) {
    const fallbacks = await counterByLabel(n.agent.proxyUrl, 'shoal_proxy_fallbacks_total', 'reason');
    t.log(`${n.containerd.name}: pull ${pullSeconds[i]?.toFixed(1)} s; fallbacks ${JSON.stringify(Object.fromEntries(fallbacks))}`);
  }
  for (const n of [a, b]) t.true(await n.containerd.imageUnpacked(ref), `${n.containerd.name} has the image, unpacked`);
});
