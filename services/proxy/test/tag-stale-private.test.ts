import test from 'ava';
import { HEADER, MANIFEST_ACCEPT, digestOf } from '@shoal/core';
import { startFakePeer } from './helpers/fake-peer.js';
import { FakeSwarmRejecting } from './helpers/fake-swarm.js';
import { fetchAll, startProxy } from './helpers/fixture.js';

// A private tag's last answer must not reach someone the registry never
// granted, even while the registry fails: only alice, who was answered 200,
// gets the stale answer when the registry turns to 503; an anonymous client
// gets the registry's last challenge, never the manifest.
test('stale-if-error on a registry answering 503 serves a private tag only to the credential answered before', async (t) => {
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', layers: [] }));
  const digest = digestOf(manifest);
  const alice = `Basic ${Buffer.from('alice:pw').toString('base64')}`;
  let failing = false;
  // A FAKE registry: one private tag readable by alice, then a 503 for everyone.
  const registry = await startFakePeer((req, res) => {
    if (failing) {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAVAILABLE","message":"down for maintenance"}]}');
      return;
    }
    if (req.headers.authorization !== alice) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"', 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"who are you"}]}');
      return;
    }
    res.writeHead(200, {
      'content-type': 'application/vnd.oci.image.manifest.v1+json',
      'content-length': String(manifest.length),
      'docker-content-digest': digest,
    });
    res.end(req.method === 'HEAD' ? undefined : manifest);
  });
  t.teardown(() => registry.close());
  const host = new URL(registry.url).host;
  const proxy = await startProxy({ blobs: new FakeSwarmRejecting(), plainHttpHosts: [host] });
  t.teardown(() => proxy.close());
  const url = `${proxy.url}/v2/private/app/manifests/v1?ns=${encodeURIComponent(host)}`;
  const headers = (authorization?: string): Record<string, string> => ({ accept: MANIFEST_ACCEPT, ...(authorization === undefined ? {} : { authorization }) });

  t.is((await fetchAll(url, { headers: headers() })).statusCode, 401);
  const live = await fetchAll(url, { headers: headers(alice) });
  t.is(live.statusCode, 200);
  t.is(live.headers[HEADER.stale], undefined);

  failing = true;
  const stale = await fetchAll(url, { headers: headers(alice) });
  t.is(stale.statusCode, 200);
  t.deepEqual(stale.body, manifest);
  t.is(stale.headers['docker-content-digest'], digest);
  t.regex(stale.headers[HEADER.stale] ?? '', /^\d+$/);
  const staleHead = await fetchAll(url, { method: 'HEAD', headers: headers(alice) });
  t.is(staleHead.statusCode, 200);
  t.is(staleHead.headers['content-length'], String(manifest.length));

  // Anonymous gets the registry's last challenge back (so containerd would send its
  // credential), bob, who was never answered 200, gets the outage.
  for (const [who, status] of [[undefined, 401], [`Basic ${Buffer.from('bob:pw').toString('base64')}`, 503]] as const) {
    const refused = await fetchAll(url, { headers: headers(who) });
    t.is(refused.statusCode, status, String(who));
    t.false(refused.body.includes(manifest), 'never the manifest');
    t.is(refused.headers[HEADER.stale], undefined);
    if (status === 401) t.is(refused.headers['www-authenticate'], 'Basic realm="fake"');
  }
});
