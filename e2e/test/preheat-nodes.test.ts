import test from 'ava';
import { join } from 'node:path';
import { request } from 'undici';
import { API_PREFIX } from '@shoal/core';
import { NODE_FLAGS } from '@shoal/cli';
import { buildImage, minimalEnv, pushImage, requireTools, runCommand, servedBlobs, waitFor, type RunResult } from '@shoal/testkit';
import { startCluster } from './helpers/cluster.js';
import { counterByLabel, metricValue } from './helpers/metrics.js';
import { SHOAL } from './helpers/processes.js';

/** The real `shoal preheat` executable (as bin/shoal.js runs it). */
function shoalPreheat(args: readonly string[], env: Record<string, string> = {}): Promise<RunResult> {
  return runCommand(process.execPath, [...NODE_FLAGS, SHOAL, 'preheat', ...args], { env: minimalEnv(env), timeoutMs: 60_000 });
}

async function registeredNodeNames(supernodeUrl: string): Promise<string[]> {
  const res = await request(`${supernodeUrl}${API_PREFIX}/status`);
  const status = (await res.body.json()) as { peers: Array<{ nodeName?: string }> };
  return status.peers.map((p) => p.nodeName ?? '').sort();
}

// Preheat into nodes: after `shoal preheat --nodes node-a`, node-a's own
// store holds every blob of the image, so its containerd pull is answered
// from the node's disk (X-Shoal-Source: local) and the registry serves each
// blob exactly once in all (to the supernode). node-b, not named, holds
// nothing. A node name no peer registered with is refused before anything
// is fetched, naming the nodes that are known.
test('shoal preheat --nodes node-a fills node-a\'s own cache: its pull is served locally; node-b holds nothing; an unknown node exits 1', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const names = ['node-a', 'node-b'];
  const cluster = await startCluster({ nodes: 2, node: (i) => ({ nodeName: names[i] }) });
  t.teardown(() => cluster.close());
  const [nodeA, nodeB] = cluster.nodes;
  if (nodeA === undefined || nodeB === undefined) throw new Error('two nodes expected');
  const image = await buildImage({
    dir: join(cluster.dir, 'layout'),
    tag: 'v1',
    layers: [
      { sizeBytes: 2 * 1024 * 1024 + 77, seed: 'preheat-nodes-a' },
      { sizeBytes: 300 * 1024, seed: 'preheat-nodes-b' },
    ],
  });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: cluster.registry.host, repository: 'test/preheat-nodes' });
  const ref = `${cluster.registry.host}/test/preheat-nodes:v1`;
  const blobs = [image.configDigest, ...image.layers.map((l) => l.digest)];
  await waitFor(async () => (await registeredNodeNames(cluster.supernode.url)).join(',') === 'node-a,node-b', { timeoutMs: 10_000, description: 'both peers registered with their node names' });

  // An unknown name: refused at request time, the known names listed, nothing fetched.
  const before = (await cluster.registry.requests()).length;
  const unknown = await shoalPreheat([ref, '--nodes', 'node-a,node-z'], { SHOAL_SUPERNODE: cluster.supernode.url });
  t.is(unknown.code, 1, unknown.stderr);
  t.regex(unknown.stderr, /unknown node node-z: no live peer registered with that name \(known nodes: node-a, node-b\) \[SHOAL_PREHEAT_NODE_UNKNOWN\]/);
  t.is((await cluster.registry.requests()).length, before, 'the registry was not asked anything');

  // Stores only (no containerd step): this test pulls with ctr itself, to see where each blob comes from.
  const preheat = await shoalPreheat([ref, '--nodes', 'node-a', '--image-pull-policy', 'None'], { SHOAL_SUPERNODE: cluster.supernode.url });
  t.is(preheat.code, 0, `${preheat.stdout}\n${preheat.stderr}`);
  t.regex(preheat.stdout, /^ {2}3\/3 blobs, 2\.3\/2\.3 MiB; nodes: node-a 3\/3 \(2\.3\/2\.3 MiB\)$/m);
  t.regex(preheat.stdout, /^preheated .*test\/preheat-nodes:v1: 3 blobs, 2\.3 MiB in the supernode's cache and in 1 node \(node-a\)/m);

  t.is(await metricValue(nodeA.agent.peerUrl, 'shoal_peer_cache_blobs'), 3, "node-a's store holds the 3 blobs");
  t.is(await metricValue(nodeB.agent.peerUrl, 'shoal_peer_cache_blobs'), 0, "node-b's store holds nothing");
  await waitFor(async () => {
    const gets = await cluster.registry.blobGets();
    return blobs.every((d) => gets.get(d) === 1);
  }, { timeoutMs: 5_000, description: 'the registry logged the preheat' });
  const afterPreheat = await cluster.registry.requests();
  const getsAfterPreheat = await cluster.registry.blobGets();

  const pull = await nodeA.containerd.pull(ref, { hostsDir: nodeA.containerd.hostsDir, debug: true });
  t.true(await nodeA.containerd.imageUnpacked(ref), 'node-a has the image, unpacked');
  const served = servedBlobs(pull.requests());
  const proxyHost = new URL(nodeA.agent.proxyUrl).host;
  for (const d of blobs) {
    const r = served.get(d);
    t.is(r?.host, proxyHost, `containerd got ${d} from the proxy`);
    t.is(r?.headers?.['x-shoal-source'], 'local', `${d} came from node-a's own store`);
  }
  const sources = await counterByLabel(nodeA.agent.proxyUrl, 'shoal_proxy_blob_bytes_total', 'source');
  const blobBytes = image.totalBytes - (image.platforms[0]?.manifestSizeBytes ?? 0);
  t.true((sources.get('local') ?? 0) >= blobBytes, `every blob byte from the local store (${sources.get('local')} of ${blobBytes})`);
  t.deepEqual([...sources.keys()].filter((k) => k !== 'local' && (sources.get(k) ?? 0) > 0), [], 'no byte from a peer, the supernode or the registry');
  const duringPull = (await cluster.registry.requests()).slice(afterPreheat.length);
  t.deepEqual(duringPull.filter((r) => r.method === 'GET' && r.uri.includes('/blobs/')), [], 'no blob fetched from the registry by the pull');
  t.deepEqual(await cluster.registry.blobGets(), getsAfterPreheat, 'each blob fetched from the registry exactly once in all');
  t.is(await metricValue(nodeB.agent.peerUrl, 'shoal_peer_cache_blobs'), 0, 'node-b still holds nothing');
});
