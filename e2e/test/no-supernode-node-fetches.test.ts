import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import test from 'ava';
import { buildImage, pushImage, requireTools } from '@shoal/testkit';
import { startCluster } from './helpers/cluster.js';

/** A loopback port nothing listens on: connections to it are refused at once. */
async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

// No supernode answers at all and there is no DHT: the node fetches each blob
// from the registry itself and containerd reads it from there as it lands. The
// registry sends each blob to the node once, not a second time through the
// proxy's own fallback.
test('no supernode at all: the node fetches each blob from the registry once, and the pull completes', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const port = await closedPort();
  const cluster = await startCluster({ nodes: 1, supernodeUrl: async () => ({ url: `http://127.0.0.1:${port}`, close: async () => undefined }) });
  t.teardown(() => cluster.close());
  const image = await buildImage({
    dir: join(cluster.dir, 'layout'),
    tag: 'v1',
    layers: [
      { sizeBytes: 3 * 1024 * 1024, seed: 'no-supernode-a' },
      { sizeBytes: 1024 * 1024 + 5, seed: 'no-supernode-b' },
    ],
  });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: cluster.registry.host, repository: 'faults/no-supernode' });
  const ref = `${cluster.registry.host}/faults/no-supernode:v1`;
  const node = cluster.nodes[0];
  if (node === undefined) throw new Error('setup');

  const pull = await node.containerd.pull(ref, { hostsDir: node.containerd.hostsDir, debug: true });
  t.is(pull.code, 0, pull.stderr);
  t.true(await node.containerd.imageUnpacked(ref), 'the image is in containerd, unpacked');
  const gets = await cluster.registry.blobGets();
  for (const digest of [image.configDigest, ...image.layers.map((l) => l.digest)]) {
    t.is(gets.get(digest) ?? 0, 1, `the registry sent ${digest} once`);
  }
});
