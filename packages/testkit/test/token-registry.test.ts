import test from 'ava';
import { buildImage, makeTempDir, pushImage, removeTempDir, requireTools, startContainerd, startRegistry, type RunningRegistry } from '../src/index.js';

const admin = { username: 'admin', password: 'admin-pw' };
const alice = { username: 'alice', password: 'alice pw' };

/** A token from the registry's realm, as a client runs the flow (GET with Basic). */
async function fetchToken(registry: RunningRegistry, scope: string, creds?: { username: string; password: string }): Promise<{ status: number; token: string | undefined }> {
  const server = registry.tokenServer;
  if (server === undefined) throw new Error('token registry expected');
  const url = `${server.realm}?service=${encodeURIComponent(server.service)}&scope=${encodeURIComponent(scope)}`;
  const headers: Record<string, string> = creds === undefined ? {} : { authorization: `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` };
  const response = await fetch(url, { headers });
  const body = (await response.json()) as { token?: string };
  return { status: response.status, token: body.token };
}

async function status(url: string, token: string | undefined): Promise<{ status: number; challenge: string }> {
  const response = await fetch(url, { method: 'HEAD', headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
  return { status: response.status, challenge: response.headers.get('www-authenticate') ?? '' };
}

// docker-registry behind `auth: token:` with our token server: the RS256 tokens
// (kid = libtrust key ID of the rootcertbundle certificate) are accepted, and the
// per-repository rules hold — alice reads private/a only, anonymous reads nothing.
test('a token-auth registry: skopeo pushes and ctr pulls with credentials, per-repository access holds', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const dir = await makeTempDir('token-registry-test');
  t.teardown(() => removeTempDir(dir));
  const registry = await startRegistry({
    tokenAuth: {
      users: [
        { ...admin, access: { '*': ['*'] } },
        { ...alice, access: { 'private/a': ['pull'] } },
      ],
    },
  });
  t.teardown(() => registry.stop());
  const server = registry.tokenServer;
  if (server === undefined) throw new Error('token server expected');

  const ping = await fetch(`${registry.url}/v2/`);
  await ping.arrayBuffer();
  t.is(ping.status, 401);
  t.regex(ping.headers.get('www-authenticate') ?? '', new RegExp(`^Bearer realm="${server.realm}",service="${server.service}"`));

  const image = await buildImage({ dir, tag: 'v1', layers: [{ sizeBytes: 256 * 1024, seed: 'token-a' }] });
  await t.throwsAsync(pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: 'private/a', credentials: alice }));
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: 'private/a', credentials: admin });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: 'private/b', credentials: admin });
  const layer = image.layers[0]?.digest;
  if (layer === undefined) throw new Error('one layer expected');

  // Raw token flow: what the registry grants for each (user, repository).
  const aliceA = await fetchToken(registry, 'repository:private/a:pull', alice);
  t.is(aliceA.status, 200);
  t.is((await status(`${registry.url}/v2/private/a/blobs/${layer}`, aliceA.token)).status, 200, 'alice reads private/a');
  const aliceB = await fetchToken(registry, 'repository:private/b:pull', alice);
  t.is(aliceB.status, 200, 'a token is issued, without the access alice lacks');
  t.is((await status(`${registry.url}/v2/private/b/blobs/${layer}`, aliceB.token)).status, 401, 'alice cannot read private/b');
  t.is((await status(`${registry.url}/v2/private/b/blobs/${layer}`, aliceA.token)).status, 401, "a token for private/a does not open private/b");
  const anonymousA = await fetchToken(registry, 'repository:private/a:pull');
  t.is(anonymousA.status, 200);
  const anonymousHead = await status(`${registry.url}/v2/private/a/blobs/${layer}`, anonymousA.token);
  t.is(anonymousHead.status, 401, 'anonymous reads nothing');
  t.regex(anonymousHead.challenge, /error="insufficient_scope"/);
  t.is((await fetchToken(registry, 'repository:private/a:pull', { username: 'alice', password: 'wrong' })).status, 401);
  // A token signed by someone else is refused.
  const forged = `${aliceA.token?.split('.').slice(0, 2).join('.')}.${Buffer.from('not a signature').toString('base64url')}`;
  t.is((await status(`${registry.url}/v2/private/a/blobs/${layer}`, forged)).status, 401);

  // containerd runs the same flow (OAuth2 POST first) with --user.
  const ctd = await startContainerd({ name: 'ctd-token' });
  t.teardown(() => ctd.stop());
  const refA = `${registry.host}/private/a:v1`;
  const anonymousPull = await ctd.pull(refA, { plainHttp: true, check: false });
  t.not(anonymousPull.code, 0);
  const refB = `${registry.host}/private/b:v1`;
  const alicePullB = await ctd.pull(refB, { plainHttp: true, user: alice, check: false });
  t.not(alicePullB.code, 0, 'alice cannot pull private/b');
  await ctd.pull(refA, { plainHttp: true, user: alice });
  t.true(await ctd.imageUnpacked(refA));
  t.true(server.issued().some((i) => i.username === 'alice' && i.status === 200 && i.granted.some((g) => g.name === 'private/a')));
});
