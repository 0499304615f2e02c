import test from 'ava';
import { join } from 'node:path';
import { buildImage, pushImage, requireTools, waitFor } from '@shoal/testkit';
import { startCluster } from './helpers/cluster.js';
import { metricValue } from './helpers/metrics.js';
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
  const pulls = [a, b].map((n) => n.containerd.pull(ref, { hostsDir: n.containerd.hostsDir }));
  const swarmBytes = async (url: string): Promise<number> => metricValue(url, 'shoal_peer_piece_bytes_total');
  await waitFor(async () => (await swarmBytes(a.agent.peerUrl)) + (await swarmBytes(b.agent.peerUrl)) > 4 * 1024 * 1024, { timeoutMs: 30_000, description: 'pulls under way' });
  await supernode.kill();
  await Promise.all(pulls);
  for (const n of [a, b]) t.true(await n.containerd.imageUnpacked(ref), `${n.containerd.name} has the image, unpacked`);
});
