import test from 'ava';
import { join } from 'node:path';
import { parseImageReference } from '@shoal/core';
import { pullImage } from '@shoal/cli';
import { buildImage, pushImage, requireTools, waitFor } from '@shoal/testkit';
import { request } from 'undici';
import { startCluster } from './helpers/cluster.js';
import { metricValue } from './helpers/metrics.js';
import { spawnSupernode, type ShoalProcess } from './helpers/processes.js';

// No single point of failure: with the supernode dead, a node that never saw
// the image finds a holder through the DHT and takes the blob from it, so the
// registry still sends each blob once.
test('without any supernode, peers find each other through the DHT', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  let supernode: ShoalProcess | undefined;
  const cluster = await startCluster({
    nodes: 2,
    node: (_i, before) => ({
      dhtListen: '127.0.0.1:0',
      dhtBootstrap: before.flatMap((n) => (n.agent.dhtAddress === undefined ? [] : [`${n.agent.dhtAddress.host}:${n.agent.dhtAddress.port}`])),
    }),
    supernodeUrl: async (registry, dir) => {
      supernode = await spawnSupernode(dir, registry.host);
      const running = supernode;
      return { url: running.url, close: () => running.kill() };
    },
  });
  t.teardown(() => cluster.close());
  const image = await buildImage({ dir: join(cluster.dir, 'layout'), tag: 'v1', layers: [{ sizeBytes: 6 * 1024 * 1024, seed: 'dht' }] });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: cluster.registry.host, repository: 'faults/dht' });
  const ref = `${cluster.registry.host}/faults/dht:v1`;
  const [holder, newcomer] = cluster.nodes;
  if (holder === undefined || newcomer === undefined || supernode === undefined) throw new Error('setup');

  await pullImage({ proxyUrl: holder.agent.proxyUrl, image: parseImageReference(ref), platform: 'linux/amd64' });
  // The holder announces a blob in the DHT once it is stored (a moment after its last bytes were served).
  for (const digest of [image.configDigest, ...image.layers.map((l) => l.digest)]) {
    await waitFor(async () => {
      const res = await request(`${holder.agent.peerUrl}/api/v1/blobs/${digest}/info`);
      const info = (await res.body.json()) as { complete?: boolean };
      return res.statusCode === 200 && info.complete === true;
    }, { timeoutMs: 20_000, description: `holder stored ${digest}` });
  }
  await supernode.kill();

  const pull = await newcomer.containerd.pull(ref, { hostsDir: newcomer.containerd.hostsDir, debug: true });
  t.is(pull.code, 0);
  t.true(await newcomer.containerd.imageUnpacked(ref), 'the newcomer has the image, unpacked');
  const layer = image.layers[0];
  if (layer === undefined) throw new Error('no layer');
  t.true((await metricValue(newcomer.agent.peerUrl, 'shoal_peer_piece_bytes_total', { from: 'peer' })) >= layer.sizeBytes, 'the layer came from the holder, found in the DHT');
  const gets = await cluster.registry.blobGets();
  t.is(gets.get(layer.digest) ?? 0, 1, 'the registry sent the layer once (to the supernode, before it died)');
});
