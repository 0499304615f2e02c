import test from 'ava';
import { digestOf, silentLogger } from '@shoal/core';
import { RegistryClient } from '../src/index.js';
import { basic, readAll, startServer, type TestServer } from './helpers.js';

const blob = Buffer.from('hello token flow');
const digest = digestOf(blob);
const repository = 'test/app';

interface Fixture {
  registry: TestServer;
  realm: TestServer;
  client: RegistryClient;
}

/**
 * A registry that wants `Bearer tok-<who>`, and a token server that hands
 * `tok-anon` to anonymous callers and `tok-alice` to alice's Basic credentials.
 */
async function setup(): Promise<Fixture> {
  const realm = await startServer((req, res) => {
    const auth = req.headers.authorization;
    let token = 'tok-anon';
    if (auth !== undefined) {
      if (auth !== basic('alice', 'secret')) {
        res.writeHead(401).end();
        return;
      }
      token = 'tok-alice';
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ token, expires_in: 300 }));
  });
  const registry = await startServer((req, res) => {
    const auth = req.headers.authorization;
    if (auth === 'Bearer tok-anon' || auth === 'Bearer tok-alice') {
      res.setHeader('content-length', blob.length);
      res.end(blob);
      return;
    }
    res.setHeader('www-authenticate', `Bearer realm="${realm.url}/token",service="test-registry",scope="repository:${repository}:pull"`);
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
  });
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: [registry.host], maxRetries: 0 });
  return { registry, realm, client };
}

async function teardown(f: Fixture): Promise<void> {
  await f.client.close();
  await f.registry.close();
  await f.realm.close();
}

test('anonymous: fetches a token without credentials and retries with it', async (t) => {
  const f = await setup();
  t.teardown(() => teardown(f));
  const res = await f.client.getBlob({ registry: f.registry.host, repository, digest });
  t.is(res.statusCode, 200);
  t.deepEqual(await readAll(res.body), blob);
  t.is(f.realm.requests.length, 1);
  const tokenRequest = f.realm.requests[0];
  t.is(tokenRequest?.headers.authorization, undefined);
  const query = new URL(tokenRequest?.url ?? '', 'http://x').searchParams;
  t.is(query.get('service'), 'test-registry');
  t.deepEqual(query.getAll('scope'), [`repository:${repository}:pull`]);
  t.is(f.registry.requests.at(-1)?.headers.authorization, 'Bearer tok-anon');
});

test('Basic credentials are exchanged at the realm for a bearer token', async (t) => {
  const f = await setup();
  t.teardown(() => teardown(f));
  const res = await f.client.getBlob({ registry: f.registry.host, repository, digest, authorization: basic('alice', 'secret') });
  t.is(res.statusCode, 200);
  await readAll(res.body);
  t.is(f.realm.requests[0]?.headers.authorization, basic('alice', 'secret'));
  t.is(f.registry.requests[0]?.headers.authorization, basic('alice', 'secret'));
  t.is(f.registry.requests.at(-1)?.headers.authorization, 'Bearer tok-alice');
});

test('a token is cached across requests: the realm is asked once', async (t) => {
  const f = await setup();
  t.teardown(() => teardown(f));
  for (let i = 0; i < 3; i++) {
    const res = await f.client.getBlob({ registry: f.registry.host, repository, digest });
    t.is(res.statusCode, 200);
    await readAll(res.body);
  }
  t.is(f.realm.requests.length, 1);
  // One 401 to learn the challenge, then the cached token goes with every request.
  t.is(f.registry.requests.length, 4);
});

test('a token is never shared between different credentials', async (t) => {
  const f = await setup();
  t.teardown(() => teardown(f));
  const anon = await f.client.getBlob({ registry: f.registry.host, repository, digest });
  await readAll(anon.body);
  const alice = await f.client.getBlob({ registry: f.registry.host, repository, digest, authorization: basic('alice', 'secret') });
  await readAll(alice.body);
  t.is(f.realm.requests.length, 2);
  t.is(f.registry.requests.at(-1)?.headers.authorization, 'Bearer tok-alice');
});

test('concurrent requests for one scope share a single token fetch', async (t) => {
  const f = await setup();
  t.teardown(() => teardown(f));
  const responses = await Promise.all(
    Array.from({ length: 5 }, () => f.client.getBlob({ registry: f.registry.host, repository, digest })),
  );
  for (const res of responses) {
    t.is(res.statusCode, 200);
    await readAll(res.body);
  }
  t.is(f.realm.requests.length, 1);
});

test("the caller's own Bearer token: its 401 is passed back unchanged", async (t) => {
  const f = await setup();
  t.teardown(() => teardown(f));
  const res = await f.client.getBlob({ registry: f.registry.host, repository, digest, authorization: 'Bearer expired' });
  t.is(res.statusCode, 401);
  t.regex(res.headers['www-authenticate'] ?? '', /^Bearer realm=/);
  t.regex((await readAll(res.body)).toString(), /UNAUTHORIZED/);
  t.is(f.realm.requests.length, 0);
  t.is(f.registry.requests.length, 1);
});

test('wrong credentials: the realm refuses and the 401 is returned', async (t) => {
  const f = await setup();
  t.teardown(() => teardown(f));
  const res = await f.client.getBlob({ registry: f.registry.host, repository, digest, authorization: basic('alice', 'wrong') });
  t.is(res.statusCode, 401);
  t.regex(res.headers['www-authenticate'] ?? '', /Bearer/);
  await readAll(res.body);
  t.is(f.realm.requests.length, 1);
});
