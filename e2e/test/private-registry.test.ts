import test from 'ava';
import { join } from 'node:path';
import { request } from 'undici';
import { buildImage, pushImage, requireTools } from '@shoal/testkit';
import { startCluster } from './helpers/cluster.js';
import { counterByLabel } from './helpers/metrics.js';

// A password-protected registry (htpasswd): containerd's credentials travel
// through the proxy, the swarm fetches with them, and an anonymous client is
// refused exactly as the registry would refuse it.
test('ctr pull --user through the proxy from an htpasswd registry', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const credentials = { username: 'shoal', password: 'sekret-passw0rd' };
  const cluster = await startCluster({ nodes: 2, registry: { htpasswd: credentials } });
  t.teardown(() => cluster.close());
  const image = await buildImage({ dir: join(cluster.dir, 'layout'), tag: 'v1', layers: [{ sizeBytes: 2 * 1024 * 1024, seed: 'private' }] });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: cluster.registry.host, repository: 'private/app', credentials });
  const ref = `${cluster.registry.host}/private/app:v1`;
  const [a, b] = cluster.nodes;
  if (a === undefined || b === undefined) throw new Error('two nodes expected');

  // Anonymous: the proxy passes the registry's challenge back.
  const layer = image.layers[0]?.digest ?? '';
  const anon = await request(`${a.agent.proxyUrl}/v2/private/app/blobs/${layer}?ns=${encodeURIComponent(cluster.registry.host)}`);
  await anon.body.dump();
  t.is(anon.statusCode, 401);
  t.regex(String(anon.headers['www-authenticate']), /^Basic /);

  await a.containerd.pull(ref, { hostsDir: a.containerd.hostsDir, user: `${credentials.username}:${credentials.password}` });
  await b.containerd.pull(ref, { hostsDir: b.containerd.hostsDir, user: `${credentials.username}:${credentials.password}` });
  t.true(await b.containerd.imageExists(ref));

  const gets = await cluster.registry.blobGets();
  t.is(gets.get(image.layers[0]?.digest ?? ('' as never)) ?? 0, 1, 'the layer left the registry once');
  const sourcesB = await counterByLabel(b.agent.proxyUrl, 'shoal_proxy_blob_bytes_total', 'source');
  t.is(sourcesB.get('upstream') ?? 0, 0, 'node B was served by the swarm');

  // Still anonymous after the blob is cached on this node: no leak.
  const anonAfter = await request(`${b.agent.proxyUrl}/v2/private/app/blobs/${layer}?ns=${encodeURIComponent(cluster.registry.host)}`);
  await anonAfter.body.dump();
  t.is(anonAfter.statusCode, 401, 'a cached private blob is not served to an anonymous client');
});
