/**
 * Regression: the proxy set no socket idle timeout, so a client that asked for
 * a blob and stopped reading held its connection and its swarm stream forever
 * (the blob route's idle watchdog deliberately spares a reader that is behind);
 * a slow request was bounded only by Node's defaults (headers 60 s, checked
 * every 30 s) and answered with a 408, which containerd retries on the same
 * host.
 *
 * Now 100 slowloris connections (headers a byte at a time, never finished)
 * and 100 clients that ask for a 32 MiB blob and never read it are all closed
 * within the server timeouts (shortened here), without any answer, and every
 * swarm stream they opened is destroyed.
 */
import { createHash } from 'node:crypto';
import { maxHeaderSize } from 'node:http';
import { Readable } from 'node:stream';
import test from 'ava';
import { request } from 'undici';
import { silentLogger, SwarmUnavailableError, type BlobProvider, type BlobRequest, type BlobStream, type ByteRange, type Digest } from '@shoal/core';
import {
  buildProxyApp,
  PROXY_SERVER_BODY_LIMIT_BYTES,
  PROXY_SERVER_HEADERS_TIMEOUT_MS,
  PROXY_SERVER_KEEP_ALIVE_TIMEOUT_MS,
  PROXY_SERVER_REQUEST_TIMEOUT_MS,
  PROXY_SERVER_SOCKET_IDLE_TIMEOUT_MS,
} from '../src/app.js';
import { FakeRegistryClient } from './helpers/fake-registry.js';
import { logConnections, neverReads, slowloris, until } from '@shoal/testkit';

const BLOB = Buffer.alloc(32 * 1024 * 1024, 3);
const DIGEST = `sha256:${createHash('sha256').update(BLOB).digest('hex')}` as Digest;
const BLOB_PATH = `/v2/library/big/blobs/${DIGEST}?ns=registry.example`;

/** A FAKE swarm that streams BLOB in 64 KiB chunks (no copies) and counts the streams it opened and saw destroyed. */
class CountingSwarm implements BlobProvider {
  opened = 0;
  closed = 0;
  async openBlob(request: BlobRequest, range: ByteRange | undefined): Promise<BlobStream> {
    if (request.digest !== DIGEST) throw new SwarmUnavailableError('fake swarm: not here');
    const part = range === undefined ? BLOB : BLOB.subarray(range.start, range.end + 1);
    this.opened++;
    const body = Readable.from(
      (function* () {
        for (let at = 0; at < part.length; at += 64 * 1024) yield part.subarray(at, at + 64 * 1024);
      })(),
    );
    body.once('close', () => this.closed++);
    return { source: 'peer', sizeBytes: BLOB.length, body };
  }
}

test('slowloris senders and clients that never read are cut without a 408, and their swarm streams destroyed', async (t) => {
  t.timeout(60_000);
  const swarm = new CountingSwarm();
  const app = await buildProxyApp(
    { log: silentLogger(), registry: new FakeRegistryClient([BLOB]), blobs: swarm },
    { serverTimeouts: { headersMs: 1_000, requestMs: 2_000, socketIdleMs: 1_500, keepAliveMs: 1_000 } },
  );
  t.teardown(() => app.close());
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  const connections = logConnections(app.server);

  const loris = Array.from({ length: 100 }, () => slowloris(address.port, `GET ${BLOB_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: ${'a'.repeat(300)}\r\n`, 100));
  const readers = Array.from({ length: 100 }, () => neverReads(address.port, BLOB_PATH));
  t.teardown(() => {
    for (const socket of [...loris, ...readers]) socket.destroy();
  });
  await until(() => connections.accepted === 200, 10_000, '200 connections accepted');
  await until(() => connections.open === 0, 15_000, 'the server to close every connection');
  const longest = Math.max(...connections.lifetimesMs);
  t.log(`200 connections closed by the server; longest lived ${Math.round(longest)} ms; swarm streams opened ${swarm.opened}, closed ${swarm.closed}`);
  t.true(longest < 8_000, `a connection lived ${Math.round(longest)} ms`);
  t.is(swarm.opened, 100);
  await until(() => swarm.closed === swarm.opened, 5_000, 'every swarm stream to be destroyed');
  // Cut, not answered: a 408 would make containerd retry the same host.
  t.deepEqual(
    loris.map((s) => s.bytesRead).filter((n) => n > 0),
    [],
  );

  const response = await request(`http://127.0.0.1:${address.port}${BLOB_PATH}`);
  t.is(response.statusCode, 200);
  let bytes = 0;
  for await (const chunk of response.body) bytes += (chunk as Buffer).length;
  t.is(bytes, BLOB.length);
});

test('the proxy applies its documented limits: timeouts, 16 KiB headers, 16 KiB bodies, all with OCI errors', async (t) => {
  const app = await buildProxyApp({ log: silentLogger(), registry: new FakeRegistryClient([]), blobs: new CountingSwarm() });
  t.teardown(() => app.close());
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  const base = `http://127.0.0.1:${address.port}`;

  t.is(app.server.headersTimeout, PROXY_SERVER_HEADERS_TIMEOUT_MS);
  t.is(app.server.requestTimeout, PROXY_SERVER_REQUEST_TIMEOUT_MS);
  t.is(app.server.timeout, PROXY_SERVER_SOCKET_IDLE_TIMEOUT_MS);
  t.is(app.server.keepAliveTimeout, PROXY_SERVER_KEEP_ALIVE_TIMEOUT_MS);
  t.deepEqual([PROXY_SERVER_HEADERS_TIMEOUT_MS, PROXY_SERVER_REQUEST_TIMEOUT_MS, PROXY_SERVER_SOCKET_IDLE_TIMEOUT_MS], [10_000, 30_000, 120_000]);
  t.is(maxHeaderSize, 16 * 1024);

  const ociError = async (response: Awaited<ReturnType<typeof request>>): Promise<string | undefined> => {
    const body = (await response.body.json()) as { errors?: Array<{ code?: string; message?: string }> };
    return typeof body.errors?.[0]?.message === 'string' ? body.errors[0].code : undefined;
  };
  const bigHeader = await request(`${base}/v2/`, { headers: { 'x-padding': 'p'.repeat(17 * 1024) } });
  t.is(bigHeader.statusCode, 431);
  t.is(await ociError(bigHeader), 'UNSUPPORTED');

  for (const path of ['/v2/a/blobs/uploads/', '/healthz', '/nowhere']) {
    const body = await request(`${base}${path}`, { method: 'POST', body: 'x'.repeat(PROXY_SERVER_BODY_LIMIT_BYTES + 1), headers: { 'content-type': 'application/json' } });
    t.true(body.statusCode === 413 || body.statusCode === 405 || body.statusCode === 404, `${path}: ${body.statusCode}`);
    t.truthy(await ociError(body), path);
  }
});
