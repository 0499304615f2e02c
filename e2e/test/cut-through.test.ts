import test from 'ava';
import { join } from 'node:path';
import { buildImage, pushImage, requireTools, servedBlobs } from '@shoal/testkit';
import { startCluster } from './helpers/cluster.js';
import { counterByLabel, metricValue } from './helpers/metrics.js';

const MiB = 1024 * 1024;

// Cut-through: over a slow registry link the supernode passes each piece on
// while it is still arriving, its hash in a trailer after the bytes; the node
// checks the bytes against it before it keeps them. containerd checks the
// whole blob's digest.
test('over a slow registry link, pieces reach the node while they are still arriving at the supernode', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const cluster = await startCluster({ nodes: 1, registryBytesPerSecond: 3 * MiB });
  t.teardown(() => cluster.close());
  const image = await buildImage({
    dir: join(cluster.dir, 'layout'),
    tag: 'v1',
    layers: [
      { sizeBytes: 6 * MiB + 4321, seed: 'cut-through-a' },
      { sizeBytes: 2 * MiB, seed: 'cut-through-b' },
    ],
  });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: cluster.registry.host, repository: 'test/app' });
  const [node] = cluster.nodes;
  if (node === undefined) throw new Error('one node expected');
  const ref = `${cluster.registryHost}/test/app:v1`;

  const pull = await node.containerd.pull(ref, { hostsDir: node.containerd.hostsDir, debug: true });
  t.true(await node.containerd.imageUnpacked(ref), 'the image is in containerd, unpacked');

  const served = servedBlobs(pull.requests());
  for (const layer of image.layers) t.is(served.get(layer.digest)?.headers?.['x-shoal-source'], 'supernode', `${layer.digest} came through the supernode`);
  const cutThrough = await metricValue(cluster.supernode.url, 'shoal_supernode_pieces_cut_through_total');
  const pieces = await metricValue(cluster.supernode.url, 'shoal_supernode_pieces_served_total');
  t.true(cutThrough >= 3, `${cutThrough} of ${pieces} pieces were passed on while they arrived`);
  const gets = await cluster.registry.blobGets();
  for (const layer of image.layers) t.is(gets.get(layer.digest) ?? 0, 1, `the registry sent ${layer.digest} once`);
  const sources = await counterByLabel(node.agent.proxyUrl, 'shoal_proxy_blob_bytes_total', 'source');
  t.is(sources.get('upstream') ?? 0, 0, 'the node never fell back to the registry');
  const failures = await metricValue(node.agent.peerUrl, 'shoal_peer_parent_failures_total');
  t.is(failures, 0, 'no piece was refused');
});

test('a registry link cut while pieces pass through: the pull still completes with the right bytes', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const cluster = await startCluster({ nodes: 1, registryBytesPerSecond: 2 * MiB });
  t.teardown(() => cluster.close());
  const image = await buildImage({ dir: join(cluster.dir, 'layout'), tag: 'v1', layers: [{ sizeBytes: 8 * MiB + 99, seed: 'cut-through-cut' }] });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: cluster.registry.host, repository: 'test/app' });
  const [node] = cluster.nodes;
  if (node === undefined || cluster.relay === undefined) throw new Error('one node and a relay expected');
  const ref = `${cluster.registryHost}/test/app:v1`;

  const pull = node.containerd.pull(ref, { hostsDir: node.containerd.hostsDir });
  const deadline = Date.now() + 20_000;
  while ((await metricValue(cluster.supernode.url, 'shoal_supernode_pieces_cut_through_total')) < 2) {
    if (Date.now() > deadline) return t.fail('no piece was passed on while it arrived');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  cluster.relay.cutAll();
  await pull;
  t.true(await node.containerd.imageUnpacked(ref), 'containerd has the image, every digest checked');
  const badPieces = await metricValue(node.agent.peerUrl, 'shoal_peer_parent_failures_total', { kind: 'bad-piece' });
  t.is(badPieces, 0, 'no wrong byte reached the node\'s store');
});

// Peer cut-through: three nodes pull at once over a slow registry link. Each piece
// reaches one node first (from the supernode, while it arrives there); the others
// get it from that node while it is still arriving there too, and check it against
// the supernode's hash before they keep it.
test('three nodes over a slow registry link: peers pass pieces on while they arrive, and every byte is checked', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const cluster = await startCluster({ nodes: 3, registryBytesPerSecond: 3 * MiB });
  t.teardown(() => cluster.close());
  const image = await buildImage({ dir: join(cluster.dir, 'layout'), tag: 'v1', layers: [{ sizeBytes: 8 * MiB + 77, seed: 'peer-cut-through' }] });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: cluster.registry.host, repository: 'test/app' });
  const ref = `${cluster.registryHost}/test/app:v1`;

  await Promise.all(cluster.nodes.map((node) => node.containerd.pull(ref, { hostsDir: node.containerd.hostsDir })));
  for (const node of cluster.nodes) t.true(await node.containerd.imageUnpacked(ref), 'every node has the image, every digest checked');

  let relayed = 0;
  for (const node of cluster.nodes) {
    relayed += await metricValue(node.agent.peerUrl, 'shoal_peer_pieces_relayed_total');
    t.is(await metricValue(node.agent.peerUrl, 'shoal_peer_parent_failures_total', { kind: 'bad-piece' }), 0, 'no wrong byte reached a store');
    const sources = await counterByLabel(node.agent.proxyUrl, 'shoal_proxy_blob_bytes_total', 'source');
    t.is(sources.get('upstream') ?? 0, 0, 'no node fell back to the registry');
  }
  t.log(`${relayed} pieces passed on by peers while they arrived`);
  t.true(relayed >= 2, `${relayed} pieces were passed on by peers while they arrived`);
  const gets = await cluster.registry.blobGets();
  for (const layer of image.layers) t.is(gets.get(layer.digest) ?? 0, 1, `the registry sent ${layer.digest} once`);
});
