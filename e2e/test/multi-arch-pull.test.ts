import test from 'ava';
import { join } from 'node:path';
import { buildImage, pushImage, requireTools } from '@shoal/testkit';
import { startCluster } from './helpers/cluster.js';

// An OCI index with two platforms pulls through the swarm for each platform,
// and each platform's layers leave the registry once.
test('a multi-arch OCI index pulls for linux/amd64 and linux/arm64', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const cluster = await startCluster({ nodes: 1 });
  t.teardown(() => cluster.close());
  const image = await buildImage({
    dir: join(cluster.dir, 'layout'),
    tag: 'multi',
    layers: [{ sizeBytes: 1536 * 1024, seed: 'multi' }],
    platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }],
  });
  t.truthy(image.indexDigest, 'the tag names an index');
  await pushImage({ layoutDir: image.layoutDir, tag: 'multi', registry: cluster.registry.host, repository: 'test/multi' });
  const ref = `${cluster.registry.host}/test/multi:multi`;
  const node = cluster.nodes[0];
  if (node === undefined) throw new Error('a node expected');
  for (const platform of ['linux/amd64', 'linux/arm64']) {
    await node.containerd.pull(ref, { hostsDir: node.containerd.hostsDir, platform });
  }
  const gets = await cluster.registry.blobGets();
  for (const p of image.platforms) {
    for (const layer of p.layers) t.is(gets.get(layer.digest) ?? 0, 1, `${p.key} layer fetched once through the swarm`);
  }
});
