// Regression: with the first supernode in rendezvous order frozen (SIGSTOP: it
// accepts connections and never answers), a new image's first pull waited 30 s
// (the peer's task-start timeout) before it moved on to the next supernode.
// Now a call unanswered for a second is followed by a liveness probe, and a
// failed probe hedges the blob to the next supernode: seconds, not tens.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import test from 'ava';
import { buildImage, pushImage, requireTools, type BuiltImage } from '@shoal/testkit';
import { startCluster } from './helpers/cluster.js';
import { counterByLabel } from './helpers/metrics.js';
import { spawnSupernode, type ShoalProcess } from './helpers/processes.js';

const MiB = 1024 * 1024;
/** What a frozen supernode may add to a new image's pull (the contract), plus scheduling noise on a shared machine. */
const ALLOWED_EXTRA_SECONDS = 3;
const NOISE_SECONDS = 1;

/** Whether `url` comes first for `digest` in rendezvous order (the rule SupernodeClient.rankSupernodes applies). */
function ranksFirst(url: string, other: string, digest: string): boolean {
  const score = (u: string): string => createHash('sha256').update(`${u}\n${digest}`).digest('hex');
  return score(url) > score(other);
}

test('a frozen supernode adds seconds, not tens, to a new image pull', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  let frozen: ShoalProcess | undefined;
  let other: ShoalProcess | undefined;
  const cluster = await startCluster({
    nodes: 1,
    supernodeUrl: async (registry, dir) => {
      frozen = await spawnSupernode(dir, registry.host, 'supernode-a');
      other = await spawnSupernode(dir, registry.host, 'supernode-b');
      const [a, b] = [frozen, other];
      return {
        url: a.url,
        // stop(), not kill(): in a teardown nothing else keeps the test process alive while it waits.
        close: async () => {
          await a.process.stop();
          await b.process.stop();
        },
      };
    },
    node: () => ({ supernodeUrls: [frozen?.url ?? '', other?.url ?? ''] }),
  });
  t.teardown(() => cluster.close());
  if (frozen === undefined || other === undefined) throw new Error('setup');
  const [node] = cluster.nodes;
  if (node === undefined) throw new Error('setup');

  // Two images alike in size; the second must have a blob that ranks the frozen supernode first.
  const build = async (name: string): Promise<BuiltImage> => {
    for (let attempt = 0; attempt < 16; attempt++) {
      const image = await buildImage({
        dir: join(cluster.dir, `layout-${name}-${attempt}`),
        tag: 'v1',
        layers: [0, 1, 2].map((i) => ({ sizeBytes: 3 * MiB, seed: `frozen-${name}-${attempt}-${i}` })),
      });
      const digests = [image.configDigest, ...image.layers.map((l) => l.digest)];
      if (name === 'warm' || digests.some((d) => ranksFirst(frozen?.url ?? '', other?.url ?? '', d))) return image;
    }
    throw new Error('no image with a blob owned by the frozen supernode');
  };
  const pull = async (name: string): Promise<number> => {
    const image = await build(name);
    await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: cluster.registry.host, repository: `faults/${name}` });
    const startedAt = performance.now();
    await node.containerd.pull(`${cluster.registry.host}/faults/${name}:v1`, { hostsDir: node.containerd.hostsDir });
    return (performance.now() - startedAt) / 1000;
  };

  const healthySeconds = await pull('warm');
  process.kill(frozen.process.pid, 'SIGSTOP');
  let frozenSeconds: number;
  try {
    frozenSeconds = await pull('cold');
  } finally {
    process.kill(frozen.process.pid, 'SIGCONT');
  }
  const fallbacks = await counterByLabel(node.agent.proxyUrl, 'shoal_proxy_fallbacks_total', 'reason');
  t.log(`pull with both supernodes: ${healthySeconds.toFixed(1)} s; with the first frozen: ${frozenSeconds.toFixed(1)} s; fallbacks ${JSON.stringify(Object.fromEntries(fallbacks))}`);
  t.true(frozenSeconds - healthySeconds <= ALLOWED_EXTRA_SECONDS + NOISE_SECONDS, `the frozen supernode added ${(frozenSeconds - healthySeconds).toFixed(1)} s`);
  t.is([...fallbacks.values()].reduce((a, b) => a + b, 0), 0, 'the proxy never fell back to the registry: the swarm served every blob');
  t.true(await node.containerd.imageUnpacked(`${cluster.registry.host}/faults/cold:v1`), 'the image is there, unpacked');
});
