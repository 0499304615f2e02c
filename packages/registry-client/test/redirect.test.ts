import test from 'ava';
import { digestOf, silentLogger, UpstreamError } from '@shoal/core';
import { RegistryClient } from '../src/index.js';
import { basic, readAll, startServer } from './helpers.js';

const digest = digestOf('redirected blob');
const auth = basic('alice', 'secret');

test('307 to another origin: followed, Authorization not sent there, Range kept', async (t) => {
  const storage = await startServer((req, res) => {
    res.writeHead(req.headers.range === undefined ? 200 : 206).end('redirected blob');
  });
  const registry = await startServer((_req, res) => {
    res.writeHead(307, { location: `${storage.url}/bucket/blob?sig=secret` }).end();
  });
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: [registry.host] });
  t.teardown(async () => {
    await client.close();
    await registry.close();
    await storage.close();
  });
  const res = await client.getBlob({ registry: registry.host, repository: 'a/b', digest, authorization: auth, range: 'bytes=0-' });
  t.is(res.statusCode, 206);
  t.is((await readAll(res.body)).toString(), 'redirected blob');
  t.is(registry.requests[0]?.headers.authorization, auth);
  t.is(storage.requests.length, 1);
  t.is(storage.requests[0]?.url, '/bucket/blob?sig=secret');
  t.is(storage.requests[0]?.headers.authorization, undefined);
  t.is(storage.requests[0]?.headers.range, 'bytes=0-');
});

test('relative redirect: resolved against the current URL, same origin keeps Authorization', async (t) => {
  const registry = await startServer((req, res) => {
    if (req.url?.startsWith('/v2/a/b/blobs/')) {
      res.writeHead(302, { location: '../../../storage/blob-1' }).end();
      return;
    }
    res.end(`at ${req.url}`);
  });
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: [registry.host] });
  t.teardown(async () => {
    await client.close();
    await registry.close();
  });
  const res = await client.getBlob({ registry: registry.host, repository: 'a/b', digest, authorization: auth });
  t.is(res.statusCode, 200);
  t.is((await readAll(res.body)).toString(), 'at /v2/storage/blob-1');
  t.is(registry.requests[1]?.headers.authorization, auth);
});

test('a redirect loop is an UpstreamError 502', async (t) => {
  const registry = await startServer((req, res) => {
    res.writeHead(301, { location: req.url === '/loop-a' ? '/loop-b' : '/loop-a' }).end();
  });
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: [registry.host] });
  t.teardown(async () => {
    await client.close();
    await registry.close();
  });
  const err = await t.throwsAsync(client.getBlob({ registry: registry.host, repository: 'a/b', digest }), { instanceOf: UpstreamError });
  t.is(err?.statusCode, 502);
  t.regex(err?.message ?? '', /loop/);
  t.is(registry.requests.length, 3);
});

test('more than 5 hops is an UpstreamError 502', async (t) => {
  let n = 0;
  const registry = await startServer((_req, res) => {
    n++;
    res.writeHead(308, { location: `/hop-${n}` }).end();
  });
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: [registry.host] });
  t.teardown(async () => {
    await client.close();
    await registry.close();
  });
  const err = await t.throwsAsync(client.getBlob({ registry: registry.host, repository: 'a/b', digest }), { instanceOf: UpstreamError });
  t.is(err?.statusCode, 502);
  t.regex(err?.message ?? '', /redirects/);
  // The original request plus 5 followed hops.
  t.is(registry.requests.length, 6);
});

test('a redirect to a non-http(s) scheme is not followed', async (t) => {
  const registry = await startServer((_req, res) => {
    res.writeHead(302, { location: 'file:///etc/passwd' }).end();
  });
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: [registry.host] });
  t.teardown(async () => {
    await client.close();
    await registry.close();
  });
  const err = await t.throwsAsync(client.getBlob({ registry: registry.host, repository: 'a/b', digest }), { instanceOf: UpstreamError });
  t.is(err?.statusCode, 502);
  t.is(registry.requests.length, 1);
});
