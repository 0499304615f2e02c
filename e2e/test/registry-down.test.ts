import test from 'ava';
import { join } from 'node:path';
import { buildImage, pushImage, requireTools, servedBlobs } from '@shoal/testkit';
import { startCluster } from './helpers/cluster.js';

// Issue "Hardening" point 4: with the registry stopped, a node that pulled an
// image can pull it again by tag: the tag resolves from the proxy's last known
// answer (x-shoal-stale) and the blobs come from the swarm on the grants this
// node's proxy remembers. That memory is per proxy (see docs/security.md): a
// node whose proxy was never granted anything gets no stale answer, and its
// pull fails as it would without Shoal — quickly, without hanging.
test('registry stopped: the node that pulled before pulls again by tag; a node never granted does not', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const cluster = await startCluster({ nodes: 2 });
  t.teardown(() => cluster.close());
  const image = await buildImage({
    dir: join(cluster.dir, 'layout'),
    tag: 'v1',
    layers: [
      { sizeBytes: 3 * 1024 * 1024, seed: 'registry-down-a' },
      { sizeBytes: 100 * 1024, seed: 'registry-down-b' },
    ],
  });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: cluster.registry.host, repository: 'test/app' });
  const ref = `${cluster.registry.host}/test/app:v1`;
  const [a, b] = cluster.nodes;
  if (a === undefined || b === undefined) throw new Error('two nodes expected');

  await a.containerd.pull(ref, { hostsDir: a.containerd.hostsDir });
  t.true(await a.containerd.imageUnpacked(ref));

  await cluster.registry.process.stop();
  const gone = await fetch(`${cluster.registry.url}/v2/`).then(
    () => false,
    () => true,
  );
  t.true(gone, 'the registry is unreachable');

  // Node A forgets the image and its content, then pulls it again by tag.
  await a.containerd.ctr(['images', 'rm', '--sync', ref]);
  const left = await a.containerd.contentDigests();
  for (const layer of image.layers) t.false(left.has(layer.digest), `${layer.digest} was removed from node A's content store`);
  const again = await a.containerd.pull(ref, { hostsDir: a.containerd.hostsDir, debug: true });
  t.true(await a.containerd.imageUnpacked(ref), 'node A has the image again');
  const proxyHostA = new URL(a.agent.proxyUrl).host;
  const resolve = again.requests().find((r) => r.host === proxyHostA && r.digest === undefined && r.status === 200);
  t.regex(resolve?.headers?.['x-shoal-stale'] ?? '', /^\d+$/, 'the tag was resolved from the stale answer, and said so');
  const served = servedBlobs(again.requests());
  for (const digest of [image.configDigest, ...image.layers.map((l) => l.digest)]) {
    const r = served.get(digest);
    t.is(r?.host, proxyHostA, `${digest} came through node A's proxy`);
    t.true(['local', 'peer', 'supernode'].includes(r?.headers?.['x-shoal-source'] ?? ''), `${digest} came from the swarm`);
  }

  // Node B's proxy never answered this tag, nor granted anything: no stale answer there.
  const started = Date.now();
  const pullB = await b.containerd.pull(ref, { hostsDir: b.containerd.hostsDir, debug: true, check: false, timeoutMs: 120_000 });
  t.not(pullB.code, 0, 'node B cannot pull while the registry is down');
  t.true(Date.now() - started < 60_000, 'and fails fast instead of hanging');
  const proxyHostB = new URL(b.agent.proxyUrl).host;
  const resolveB = pullB.requests().find((r) => r.host === proxyHostB && r.digest === undefined);
  t.true(resolveB?.status !== undefined && resolveB.status >= 500, `node B's proxy answered ${String(resolveB?.status)}`);
  t.is(resolveB?.headers?.['x-shoal-stale'], undefined);
});
