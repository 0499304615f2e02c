// A blob that waits at the supernode for one of its registry's fetch slots is
// waited for, not fetched from the registry by each node that wants it. The
// node's call to start it used to wait without a byte until the fetch began:
// the supernode closed such a call after 60 s of silence, and a proxy with no
// other blob of its node moving gave up on it after its first-byte timeout.
// Now the supernode answers every 5 s where the blob stands in its queue, and
// a queue whose fetches move counts as progress.
import test from 'ava';
import { join } from 'node:path';
import { buildImage, pushImage, requireTools, servedBlobs, waitFor } from '@shoal/testkit';
import { startCluster } from './helpers/cluster.js';
import { counterByLabel, metricValue } from './helpers/metrics.js';

const MiB = 1024 * 1024;
/** The registry link: the first image's layer holds the only fetch slot for about 20 s. */
const REGISTRY_BYTES_PER_SECOND = MiB / 2;
/**
 * The waiting node's proxy gives up on a swarm that shows no progress this long
 * (the default is 30 s): above the 5 s between the supernode's answers, under
 * the queue's wait.
 */
const FIRST_BYTE_TIMEOUT_MS = 8_000;

test('a blob queued at the supernode longer than the proxy’s first-byte timeout still comes from the swarm, and from the registry once', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const cluster = await startCluster({
    nodes: 2,
    registryBytesPerSecond: REGISTRY_BYTES_PER_SECOND,
    supernode: { maxFetchesPerRegistry: 1 },
    node: { firstByteTimeoutMs: FIRST_BYTE_TIMEOUT_MS },
  });
  t.teardown(() => cluster.close());
  const [first, second] = cluster.nodes;
  if (first === undefined || second === undefined) throw new Error('two nodes expected');
  const build = async (name: string, sizeBytes: number) => {
    const image = await buildImage({ dir: join(cluster.dir, `layout-${name}`), tag: 'v1', layers: [{ sizeBytes, seed: `queued-${name}` }] });
    await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: cluster.registry.host, repository: `queue/${name}` });
    return image;
  };
  const slow = await build('slow', 10 * MiB);
  const queued = await build('queued', 2 * MiB);

  const slowPull = first.containerd.pull(`${cluster.registryHost}/queue/slow:v1`, { hostsDir: first.containerd.hostsDir });
  // The slow layer takes the registry's one fetch slot; then the other image is pulled on the
  // other node. Two pieces served: the config's one, and one of the layer's (its fetch has begun).
  await waitFor(async () => (await metricValue(cluster.supernode.url, 'shoal_supernode_pieces_served_total')) >= 2, { timeoutMs: 15_000, description: 'the slow layer to reach a node' });
  const queuedPull = second.containerd.pull(`${cluster.registryHost}/queue/queued:v1`, { hostsDir: second.containerd.hostsDir, debug: true });
  await waitFor(async () => (await metricValue(cluster.supernode.url, 'shoal_supernode_queued_fetches')) >= 1, { timeoutMs: 15_000, description: 'the second layer to wait for the fetch slot' });
  const queuedAt = performance.now();
  const [, pulled] = await Promise.all([slowPull, queuedPull]);
  const waitedSeconds = (performance.now() - queuedAt) / 1000;
  t.log(`the queued image's pull ended ${waitedSeconds.toFixed(1)} s after its layer was queued`);
  t.true(waitedSeconds * 1000 > 2 * FIRST_BYTE_TIMEOUT_MS, `the layer was queued for ${waitedSeconds.toFixed(1)} s, longer than the proxy's first-byte timeout`);

  t.true(await second.containerd.imageUnpacked(`${cluster.registryHost}/queue/queued:v1`), 'the queued image is in containerd, unpacked');
  const layer = queued.layers[0];
  if (layer === undefined) throw new Error('one layer expected');
  const served = servedBlobs(pulled.requests());
  t.is(served.get(layer.digest)?.headers?.['x-shoal-source'], 'supernode', 'the queued layer came through the supernode');
  const fallbacks = await counterByLabel(second.agent.proxyUrl, 'shoal_proxy_fallbacks_total', 'reason');
  t.deepEqual([...fallbacks.entries()].filter(([, n]) => n > 0), [], 'the waiting node never fell back to the registry');
  const gets = await cluster.registry.blobGets();
  for (const blob of [...slow.layers, ...queued.layers]) t.is(gets.get(blob.digest) ?? 0, 1, `the registry sent ${blob.digest} once`);
});
