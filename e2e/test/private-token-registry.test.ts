import test from 'ava';
import { join } from 'node:path';
import { request } from 'undici';
import { buildImage, pushImage, requireTools, servedBlobs, type Credentials } from '@shoal/testkit';
import { startCluster } from './helpers/cluster.js';
import { counterByLabel } from './helpers/metrics.js';

const admin: Credentials = { username: 'admin', password: 'admin-pw' };
const alice: Credentials = { username: 'alice', password: 'alice-pw' };
const carol: Credentials = { username: 'carol', password: 'carol-pw' };

function basic(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

// A registry with token auth (docker-registry `auth: token:` + a token server):
// containerd runs the bearer flow through the proxy with alice's credentials,
// the second node's blobs come from the swarm, and cached private bytes never
// reach a client the registry would refuse — anonymous, or a credential for
// another repository asking for the digest under its own repository.
test('token-auth registry: ctr pull --user through the proxy, swarm bytes, no leak across credentials or repositories', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const cluster = await startCluster({
    nodes: 2,
    registry: {
      tokenAuth: {
        users: [
          { ...admin, access: { '*': ['*'] } },
          { ...alice, access: { 'private/a': ['pull'] } },
          { ...carol, access: { 'private/b': ['pull'] } },
        ],
      },
    },
  });
  t.teardown(() => cluster.close());
  const tokenServer = cluster.registry.tokenServer;
  if (tokenServer === undefined) throw new Error('token server expected');
  const imageA = await buildImage({ dir: join(cluster.dir, 'layout-a'), tag: 'v1', layers: [{ sizeBytes: 2 * 1024 * 1024, seed: 'token-private-a' }] });
  const imageB = await buildImage({ dir: join(cluster.dir, 'layout-b'), tag: 'v1', layers: [{ sizeBytes: 64 * 1024, seed: 'token-private-b' }] });
  await pushImage({ layoutDir: imageA.layoutDir, tag: 'v1', registry: cluster.registry.host, repository: 'private/a', credentials: admin });
  await pushImage({ layoutDir: imageB.layoutDir, tag: 'v1', registry: cluster.registry.host, repository: 'private/b', credentials: admin });
  const ref = `${cluster.registry.host}/private/a:v1`;
  const layerA = imageA.layers[0];
  if (layerA === undefined) throw new Error('one layer expected');
  const layer = layerA.digest;
  const [a, b] = cluster.nodes;
  if (a === undefined || b === undefined) throw new Error('two nodes expected');
  const ns = `?ns=${encodeURIComponent(cluster.registry.host)}`;

  // Anonymous, before anything is cached: the registry's bearer challenge comes back.
  const anonBefore = await request(`${a.agent.proxyUrl}/v2/private/a/blobs/${layer}${ns}`);
  await anonBefore.body.dump();
  t.is(anonBefore.statusCode, 401);
  t.regex(String(anonBefore.headers['www-authenticate']), new RegExp(`^Bearer realm="${tokenServer.realm}"`));

  await a.containerd.pull(ref, { hostsDir: a.containerd.hostsDir, user: alice });
  const pullB = await b.containerd.pull(ref, { hostsDir: b.containerd.hostsDir, user: alice, debug: true });
  t.true(await b.containerd.imageUnpacked(ref));

  // containerd fetched a token from the realm and sent it to the proxy.
  const layerRequest = servedBlobs(pullB.requests()).get(layer);
  t.is(layerRequest?.host, new URL(b.agent.proxyUrl).host, 'node B got the layer from its proxy');
  t.true(layerRequest?.headers?.['x-shoal-source'] === 'peer' || layerRequest?.headers?.['x-shoal-source'] === 'supernode', 'from the swarm');
  t.true(tokenServer.issued().some((i) => i.username === 'alice' && i.granted.some((g) => g.name === 'private/a')));
  const gets = await cluster.registry.blobGets();
  t.is(gets.get(layer) ?? 0, 1, 'the layer left the registry once');
  const sourcesB = await counterByLabel(b.agent.proxyUrl, 'shoal_proxy_blob_bytes_total', 'source');
  t.is(sourcesB.get('upstream') ?? 0, 0, 'node B was served by the swarm');

  const noBytes = async (label: string, path: string, authorization: string | undefined, statuses: number[]): Promise<void> => {
    const response = await request(`${b.agent.proxyUrl}${path}`, { headers: authorization === undefined ? {} : { authorization } });
    const body = Buffer.from(await response.body.arrayBuffer());
    t.true(statuses.includes(response.statusCode), `${label}: ${response.statusCode}`);
    t.true(body.length < 4096, `${label}: an error body, not the layer (${body.length} bytes)`);
    t.is(response.headers['x-shoal-source'], undefined, label);
  };
  // The layer is now cached on both nodes. Anonymous on node B gets the registry's 401.
  await noBytes('anonymous', `/v2/private/a/blobs/${layer}${ns}`, undefined, [401]);
  // Alice's bearer token for private/a, asking for the same digest under private/b.
  const tokenResponse = await request(`${tokenServer.realm}?service=${encodeURIComponent(tokenServer.service)}&scope=repository:private/a:pull`, {
    headers: { authorization: basic(alice) },
  });
  const aliceToken = ((await tokenResponse.body.json()) as { token: string }).token;
  await noBytes('alice bearer for private/a, under private/b', `/v2/private/b/blobs/${layer}${ns}`, `Bearer ${aliceToken}`, [401, 403, 404]);
  // Alice's password: the proxy runs the token flow for private/b, where she has no access.
  await noBytes('alice basic, under private/b', `/v2/private/b/blobs/${layer}${ns}`, basic(alice), [401, 403, 404]);
  // Carol may read private/b, which does not hold this layer: the registry says 404.
  await noBytes('carol basic, under private/b', `/v2/private/b/blobs/${layer}${ns}`, basic(carol), [404]);
  // Carol cannot read private/a at all.
  await noBytes('carol basic, under private/a', `/v2/private/a/blobs/${layer}${ns}`, basic(carol), [401, 403]);
  // While alice herself still gets it, from the swarm.
  const aliceOwn = await request(`${b.agent.proxyUrl}/v2/private/a/blobs/${layer}${ns}`, { headers: { authorization: `Bearer ${aliceToken}` } });
  const aliceBytes = Buffer.from(await aliceOwn.body.arrayBuffer());
  t.is(aliceOwn.statusCode, 200);
  t.is(aliceBytes.length, layerA.sizeBytes);
  t.not(aliceOwn.headers['x-shoal-source'], 'upstream');
});
