import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import test from 'ava';
import { HEADER, digestOf, type BlobProvider, type BlobRequest, type BlobStream, type ByteRange } from '@shoal/core';
import { startFakePeer } from './helpers/fake-peer.js';
import { fetchAll, startProxy } from './helpers/fixture.js';

/** A FAKE swarm that holds one blob and hands it to anyone: the proxy alone must decide who gets it. */
class FakeSwarmHolding implements BlobProvider {
  constructor(private readonly content: Buffer) {}
  async openBlob(_request: BlobRequest, range: ByteRange | undefined): Promise<BlobStream> {
    const part = range === undefined ? this.content : this.content.subarray(range.start, range.end + 1);
    return { source: 'peer', sizeBytes: this.content.length, body: Readable.from([part]) };
  }
}

// Issue "Hardening" point 4: when the registry is down (503, then gone), the
// access check cannot run. A credential granted this blob in this repository
// within grantMemoryMs is still served from the swarm; nobody else is, and
// the grant does not carry over to another repository.
test('registry down: a blob goes from the swarm only to a credential granted it before, in that repository', async (t) => {
  const content = randomBytes(100_000);
  const digest = digestOf(content);
  const alice = `Basic ${Buffer.from('alice:pw').toString('base64')}`;
  const bob = `Basic ${Buffer.from('bob:pw').toString('base64')}`;
  let failing = false;
  // A FAKE registry: alice may read private/a; private/b does not hold the blob.
  const registry = await startFakePeer((req, res) => {
    if (failing) {
      res.writeHead(503).end();
      return;
    }
    if (req.headers.authorization !== alice && req.headers.authorization !== bob) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"' }).end();
      return;
    }
    if (req.url?.startsWith(`/v2/private/a/blobs/${digest}`) === true && req.headers.authorization === alice) {
      res.writeHead(200, { 'content-length': String(content.length), 'docker-content-digest': digest, 'content-type': 'application/octet-stream' });
      res.end(req.method === 'HEAD' ? undefined : content);
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"BLOB_UNKNOWN","message":"no"}]}');
  });
  const host = new URL(registry.url).host;
  const swarm = new FakeSwarmHolding(content);
  const proxy = await startProxy({ blobs: swarm, plainHttpHosts: [host] });
  t.teardown(() => proxy.close());
  const forgetful = await startProxy({ blobs: swarm, plainHttpHosts: [host], init: { grantMemoryMs: 0 } });
  t.teardown(() => forgetful.close());
  const path = (repository: string): string => `/v2/${repository}/blobs/${digest}?ns=${encodeURIComponent(host)}`;
  const get = (base: string, repository: string, authorization?: string, method: 'GET' | 'HEAD' = 'GET') =>
    fetchAll(`${base}${path(repository)}`, { method, headers: authorization === undefined ? {} : { authorization } });

  for (const p of [proxy, forgetful]) {
    const live = await get(p.url, 'private/a', alice);
    t.is(live.statusCode, 200);
    t.is(live.headers[HEADER.source], 'peer');
  }
  t.is((await get(proxy.url, 'private/a', undefined)).statusCode, 401, 'anonymous is challenged');
  t.is((await get(proxy.url, 'private/a', bob)).statusCode, 404, 'bob is not granted private/a');
  t.is((await get(proxy.url, 'private/b', alice)).statusCode, 404, "private/a's grant does not open private/b");

  const expectRefused = async (base: string, repository: string, authorization: string | undefined, statuses: number[]): Promise<void> => {
    const response = await get(base, repository, authorization);
    t.true(statuses.includes(response.statusCode), `${repository} ${String(authorization)}: ${response.statusCode}`);
    t.false(response.body.includes(content.subarray(0, 64)), 'never the bytes');
  };

  for (const outage of ['503', 'unreachable'] as const) {
    if (outage === '503') failing = true;
    else await registry.close();
    // Forget the 60 s access cache: what answers now is the grant memory alone.
    proxy.app.shoalProxy.upstream.access.clear();
    forgetful.app.shoalProxy.upstream.access.clear();

    const served = await get(proxy.url, 'private/a', alice);
    t.is(served.statusCode, 200, outage);
    t.true(served.body.equals(content));
    t.is(served.headers[HEADER.source], 'peer');
    const head = await get(proxy.url, 'private/a', alice, 'HEAD');
    t.is(head.statusCode, 200);
    t.is(head.headers['content-length'], String(content.length), 'the size remembered with the grant');

    const down = outage === '503' ? [503] : [502, 503, 504];
    // Anonymous gets the challenge it got before (containerd would come back with its credential).
    await expectRefused(proxy.url, 'private/a', undefined, [401]);
    await expectRefused(proxy.url, 'private/b', undefined, down);
    await expectRefused(proxy.url, 'private/a', bob, down);
    await expectRefused(proxy.url, 'private/b', alice, down);
    await expectRefused(forgetful.url, 'private/a', alice, down);
  }
});
