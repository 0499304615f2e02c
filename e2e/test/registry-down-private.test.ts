import test from 'ava';
import { join } from 'node:path';
import { buildImage, pushImage, requireTools, servedBlobs } from '@shoal/testkit';
import { startCluster } from './helpers/cluster.js';

// A private image (htpasswd) while the registry is down: containerd sends its
// credentials only after a 401, so the proxy replays the registry's last
// challenge to the anonymous first request; containerd comes back with the
// same Basic credential the proxy remembers, and gets the stale tag and the
// swarm's blobs. An anonymous client still gets nothing but the challenge.
test('registry stopped: ctr pull --user of a private image again on the same node, through the replayed challenge', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo', 'htpasswd']);
  const credentials = { username: 'shoal', password: 'down-but-not-out' };
  const cluster = await startCluster({ nodes: 1, registry: { htpasswd: credentials } });
  t.teardown(() => cluster.close());
  const image = await buildImage({ dir: join(cluster.dir, 'layout'), tag: 'v1', layers: [{ sizeBytes: 1024 * 1024, seed: 'registry-down-private' }] });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: cluster.registry.host, repository: 'private/app', credentials });
  const ref = `${cluster.registry.host}/private/app:v1`;
  const [a] = cluster.nodes;
  if (a === undefined) throw new Error('one node expected');

  await a.containerd.pull(ref, { hostsDir: a.containerd.hostsDir, user: credentials });
  await cluster.registry.process.stop();
  await a.containerd.ctr(['images', 'rm', '--sync', ref]);

  const again = await a.containerd.pull(ref, { hostsDir: a.containerd.hostsDir, user: credentials, debug: true });
  t.true(await a.containerd.imageUnpacked(ref));
  const proxyHost = new URL(a.agent.proxyUrl).host;
  const resolves = again.requests().filter((r) => r.host === proxyHost && r.digest === undefined);
  t.is(resolves[0]?.status, 401, 'the anonymous first try got the replayed challenge');
  t.regex(resolves[0]?.headers?.['www-authenticate'] ?? '', /^Basic /);
  const resolved = resolves.find((r) => r.status === 200);
  t.regex(resolved?.headers?.['x-shoal-stale'] ?? '', /^\d+$/, 'then the stale tag, for the credential');
  const layer = image.layers[0]?.digest;
  if (layer === undefined) throw new Error('one layer expected');
  const served = servedBlobs(again.requests()).get(layer);
  t.is(served?.host, proxyHost);
  t.true(['local', 'peer', 'supernode'].includes(served?.headers?.['x-shoal-source'] ?? ''));

  // Anonymous, with the blob cached on this node: the challenge, not the bytes.
  const ns = `?ns=${encodeURIComponent(cluster.registry.host)}`;
  const anonymous = await fetch(`${a.agent.proxyUrl}/v2/private/app/blobs/${layer}${ns}`);
  const body = Buffer.from(await anonymous.arrayBuffer());
  t.is(anonymous.status, 401);
  t.true(body.length < 4096);
});
