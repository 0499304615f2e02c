/**
 * Regression: the peer set no socket idle timeout, so a child that asked for
 * a piece and stopped reading held its connection, its piece stream and one of
 * the DEFAULT_MAX_UPLOADS (16) upload slots forever: 16 such children stopped
 * the peer from serving anyone. Slow headers were bounded only by Node's
 * defaults (60 s, checked every 30 s).
 *
 * Now 100 slowloris connections (headers a byte at a time, never finished)
 * and 100 children that ask for an 8 MiB piece and never read it are all
 * closed within the server timeouts (shortened here), every piece stream is
 * destroyed, and the upload slots are free again for a child that reads.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { request } from 'undici';
import { API_PREFIX, pieceLayout, SwarmUnavailableError, silentLogger, type BlobProvider, type BlobStream, type ChunkReader, type Digest } from '@shoal/core';
import { PieceStore, type BlobRecord, type PieceStoreApi } from '@shoal/store';
import { buildPeerApp } from '../src/app.js';
import { logConnections, neverReads, slowloris, until } from '@shoal/testkit';

const DIGEST = `sha256:${'b'.repeat(64)}` as Digest;
/** A 16 GiB blob has 8 MiB pieces (the largest): far more than loopback socket buffers hold. */
const LAYOUT = pieceLayout(16 * 1024 ** 3);

/**
 * A real (empty) PieceStore that, through a Proxy, also claims to hold every
 * piece of one huge blob: each read is a lazily generated 8 MiB reader, so
 * nothing big is ever written to disk or held in memory. FAKE pieces.
 */
function withHugeBlob(store: PieceStore, streams: { opened: number; destroyed: number }): PieceStoreApi {
  const record: BlobRecord = { digest: DIGEST, layout: LAYOUT, pieceSha256: Array<string>(LAYOUT.pieceCount).fill('c'.repeat(64)), verifiedCount: LAYOUT.pieceCount, complete: true };
  const openReader = (): ChunkReader => {
    streams.opened++;
    let left = LAYOUT.pieceSizeBytes;
    let closed = false;
    return {
      read: async (into) => {
        const n = Math.min(into.length, left);
        into.fill(1, 0, n);
        left -= n;
        return n;
      },
      close: () => {
        if (closed) return;
        closed = true;
        streams.destroyed++;
      },
    };
  };
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'get') return (digest: Digest) => (digest === DIGEST ? record : target.get(digest));
      if (property === 'hasPiece') return (digest: Digest, index: number) => (digest === DIGEST ? index < LAYOUT.pieceCount : target.hasPiece(digest, index));
      if (property === 'openReader' || property === 'openPieceReader') return openReader;
      return Reflect.get(target, property, receiver) as unknown;
    },
  });
}

/** A FAKE swarm for the whole-blob route, which this test does not use. */
const noSwarm: BlobProvider & { activeDownloads: number } = {
  activeDownloads: 0,
  async openBlob(): Promise<BlobStream> {
    throw new SwarmUnavailableError('fake: no swarm here');
  },
};

test('slowloris senders and children that never read are cut, and their upload slots freed', async (t) => {
  t.timeout(60_000);
  const dir = await mkdtemp(join(tmpdir(), 'shoal-peer-slow-'));
  const store = await PieceStore.open({ log: silentLogger() }, { dir });
  t.teardown(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const streams = { opened: 0, destroyed: 0 };
  const timeouts = { headersMs: 1_000, requestMs: 2_000, socketIdleMs: 1_500, keepAliveMs: 1_000 };
  const app = await buildPeerApp({ log: silentLogger(), store: withHugeBlob(store, streams), peer: noSwarm }, { token: undefined, serverTimeouts: timeouts });
  t.teardown(() => app.close());
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  const connections = logConnections(app.server);

  const piecePath = `${API_PREFIX}/blobs/${DIGEST}/pieces/3`;
  const sockets = [
    ...Array.from({ length: 100 }, () => slowloris(address.port, `GET ${piecePath} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ${'p'.repeat(200)}\r\n`, 100)),
    ...Array.from({ length: 100 }, () => neverReads(address.port, piecePath)),
  ];
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
  });
  await until(() => connections.accepted === 200, 10_000, '200 connections accepted');
  // Headers are due within 1 s (checked every second); a stalled body is cut after 1.5 s without progress.
  await until(() => connections.open === 0, 15_000, 'the server to close every connection');
  const longest = Math.max(...connections.lifetimesMs);
  t.log(`200 connections closed by the server; longest lived ${Math.round(longest)} ms; piece streams opened ${streams.opened}, destroyed ${streams.destroyed}`);
  t.true(longest < 8_000, `a connection lived ${Math.round(longest)} ms`);
  t.true(streams.opened > 0, 'some children got a piece stream');
  await until(() => streams.destroyed === streams.opened, 5_000, 'every piece stream to be destroyed');

  // The upload slots are free again: a child that reads gets its whole piece.
  const response = await request(`http://127.0.0.1:${address.port}${piecePath}`);
  t.is(response.statusCode, 200);
  let bytes = 0;
  for await (const chunk of response.body) bytes += (chunk as Buffer).length;
  t.is(bytes, LAYOUT.pieceSizeBytes);
});

test('the peer app applies its documented server timeouts and Node keeps its 16 KiB header limit', async (t) => {
  const { maxHeaderSize } = await import('node:http');
  const dir = await mkdtemp(join(tmpdir(), 'shoal-peer-limits-'));
  const store = await PieceStore.open({ log: silentLogger() }, { dir });
  t.teardown(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const { PEER_SERVER_HEADERS_TIMEOUT_MS, PEER_SERVER_REQUEST_TIMEOUT_MS, PEER_SERVER_SOCKET_IDLE_TIMEOUT_MS, PEER_SERVER_KEEP_ALIVE_TIMEOUT_MS } = await import('../src/app.js');
  const app = await buildPeerApp({ log: silentLogger(), store, peer: noSwarm }, { token: undefined });
  t.teardown(() => app.close());
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.is(app.server.headersTimeout, PEER_SERVER_HEADERS_TIMEOUT_MS);
  t.is(app.server.requestTimeout, PEER_SERVER_REQUEST_TIMEOUT_MS);
  t.is(app.server.timeout, PEER_SERVER_SOCKET_IDLE_TIMEOUT_MS);
  t.is(app.server.keepAliveTimeout, PEER_SERVER_KEEP_ALIVE_TIMEOUT_MS);
  t.deepEqual([PEER_SERVER_HEADERS_TIMEOUT_MS, PEER_SERVER_REQUEST_TIMEOUT_MS, PEER_SERVER_SOCKET_IDLE_TIMEOUT_MS], [10_000, 30_000, 60_000]);
  t.is(maxHeaderSize, 16 * 1024);
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  const big = await request(`http://127.0.0.1:${address.port}/healthz`, { headers: { 'x-padding': 'p'.repeat(17 * 1024) } });
  await big.body.dump();
  t.is(big.statusCode, 431);
});
