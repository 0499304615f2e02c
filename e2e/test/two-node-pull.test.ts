import test from 'ava';
import { buildImage, pushImage, requireTools, servedBlobs } from '@shoal/testkit';
import { join } from 'node:path';
import { startCluster } from './helpers/cluster.js';
import { counterByLabel, metricValue } from './helpers/metrics.js';

// The whole data path with real parts: containerd → proxy → peer → supernode →
// docker-registry. The registry must send each blob once for both nodes, and
// the second node's blobs must come from the swarm.
test('two nodes pull an image; the registry sends each blob once', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const cluster = await startCluster({ nodes: 2 });
  t.teardown(() => cluster.close());
  const image = await buildImage({
    dir: join(cluster.dir, 'layout'),
    tag: 'v1',
    layers: [
      { sizeBytes: 6 * 1024 * 1024 + 123, seed: 'two-node-a' },
      { sizeBytes: 3 * 1024 * 1024, seed: 'two-node-b' },
      { sizeBytes: 1000, seed: 'two-node-c' },
    ],
  });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: cluster.registry.host, repository: 'test/app' });
  const ref = `${cluster.registry.host}/test/app:v1`;
  const before = await cluster.registry.blobGets();
  t.is([...before.values()].reduce((a, b) => a + b, 0), 0, 'nothing fetched blobs before the pulls');

  const [a, b] = cluster.nodes;
  if (a === undefined || b === undefined) throw new Error('two nodes expected');
  await a.containerd.pull(ref, { hostsDir: a.containerd.hostsDir });
  t.true(await a.containerd.imageUnpacked(ref), 'node A has the image, unpacked');

  const pullB = await b.containerd.pull(ref, { hostsDir: b.containerd.hostsDir, debug: true });
  t.true(await b.containerd.imageUnpacked(ref), 'node B has the image, unpacked');

  // What containerd itself saw: every blob from node B's proxy, marked as swarm bytes.
  const served = servedBlobs(pullB.requests());
  const proxyHost = new URL(b.agent.proxyUrl).host;
  for (const layer of image.layers) {
    const r = served.get(layer.digest);
    t.is(r?.host, proxyHost, `containerd got ${layer.digest} from the proxy`);
    t.true(r?.headers?.['x-shoal-source'] === 'supernode' || r?.headers?.['x-shoal-source'] === 'peer', `${layer.digest} came from the swarm`);
  }

  const gets = await cluster.registry.blobGets();
  const blobs = [image.configDigest, ...image.layers.map((l) => l.digest)];
  for (const digest of blobs) t.is(gets.get(digest) ?? 0, 1, `registry sent ${digest} exactly once`);

  // Every blob byte containerd received went through the proxies, none from `server`.
  const totalBlobBytes = image.layers.reduce((s, l) => s + l.sizeBytes, 0);
  const sourcesA = await counterByLabel(a.agent.proxyUrl, 'shoal_proxy_blob_bytes_total', 'source');
  const sourcesB = await counterByLabel(b.agent.proxyUrl, 'shoal_proxy_blob_bytes_total', 'source');
  t.is(sourcesA.get('upstream') ?? 0, 0, 'node A never fell back to the registry');
  t.is(sourcesB.get('upstream') ?? 0, 0, 'node B never fell back to the registry');
  t.true((sourcesB.get('supernode') ?? 0) + (sourcesB.get('peer') ?? 0) >= totalBlobBytes, 'node B got every layer byte from the swarm');

  // Peer to peer: node B took its pieces from node A, so the supernode sent each byte about once.
  const fromPeer = await metricValue(b.agent.peerUrl, 'shoal_peer_piece_bytes_total', { from: 'peer' });
  t.true(fromPeer >= totalBlobBytes * 0.5, `node B got most layer bytes from node A (${fromPeer} of ${totalBlobBytes})`);
  const seedBytes = await metricValue(cluster.supernode.url, 'shoal_supernode_bytes_served_total');
  t.true(seedBytes < totalBlobBytes * 1.5, `the supernode sent ${(seedBytes / totalBlobBytes).toFixed(2)}× the layer bytes for two nodes`);
});
