/**
 * A piece still arriving at a peer is passed on to a child as it comes: the
 * child gets the first bytes before the peer's own copy is verified, and the
 * body ends only once it matched. A copy that does not match cuts the child's
 * body, so bad bytes never reach the end of a response. A piece not arriving
 * yet is waited for while this node's fill of the blob makes progress (a chain
 * member's copy on its way), never past RELAY_WAIT_MAX_MS. Relays take no send
 * slot, so pieces the peer holds are not queued behind bytes still on their way.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { request } from 'undici';
import { API_PREFIX, digestOf, pieceLayout, pieceSpan, sha256Hex, silentLogger, SwarmUnavailableError, type BlobProvider, type BlobStream } from '@shoal/core';
import { DEFAULT_FRESH_PIECE_BYTES, PieceStore } from '@shoal/store';
import { buildPeerApp } from '../src/app.js';
import { PEER_SENDS_AT_ONCE, RELAY_WAIT_MAX_MS, RELAY_WAIT_MS } from '../src/routes/blobs.js';

/** A FAKE swarm for the whole-blob route, which this test does not use. */
const noSwarm: BlobProvider & { activeDownloads: number } = {
  activeDownloads: 0,
  async openBlob(): Promise<BlobStream> {
    throw new SwarmUnavailableError('fake: no swarm here');
  },
};

async function relayingPeer(t: ExecutionContext, pieces = 3, swarm: BlobProvider & { activeDownloads: number } = noSwarm) {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-peer-relay-'));
  const store = await PieceStore.open({ log: silentLogger() }, { dir, freshPieceBytes: DEFAULT_FRESH_PIECE_BYTES });
  const app = await buildPeerApp({ log: silentLogger(), store, peer: swarm }, { token: undefined });
  t.teardown(async () => {
    await app.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  const data = randomBytes(pieces * 1024 * 1024);
  const layout = pieceLayout(data.length);
  const digest = digestOf(data);
  await store.begin(digest, data.length);
  const piece = (i: number): Buffer => {
    const { offset, length } = pieceSpan(layout, i);
    return data.subarray(offset, offset + length);
  };
  return { store, digest, piece, url: (i: number) => `http://127.0.0.1:${address.port}${API_PREFIX}/blobs/${digest}/pieces/${i}` };
}

test('a piece arriving at a peer reaches a child before the peer verified it, and the body ends once it matched', async (t) => {
  const { store, digest, piece, url } = await relayingPeer(t);
  const source = new PassThrough();
  const write = store.writePiece(digest, 1, source, { expectedSha256: sha256Hex(piece(1)) });
  source.write(piece(1).subarray(0, 200_000));
  const response = await request(url(1));
  t.is(response.statusCode, 200);
  t.is(response.headers['x-shoal-piece-sha256'], undefined, "a relay sends no hash: the child checks the supernode's");
  const chunks: Buffer[] = [];
  let got = 0;
  const body = (async () => {
    for await (const chunk of response.body) {
      chunks.push(chunk as Buffer);
      got += (chunk as Buffer).length;
    }
  })();
  while (got === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  t.false(store.hasPiece(digest, 1), 'bytes reached the child before the piece was verified here');
  source.end(piece(1).subarray(200_000));
  await write;
  await body;
  t.true(Buffer.concat(chunks).equals(piece(1)));
});

test("a relayed piece that fails the peer's check cuts the child's body", async (t) => {
  const { store, digest, piece, url } = await relayingPeer(t);
  const bad = Buffer.from(piece(0));
  bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1;
  const source = new PassThrough();
  const write = store.writePiece(digest, 0, source, { expectedSha256: sha256Hex(piece(0)) });
  write.catch(() => undefined);
  source.write(bad.subarray(0, 100_000));
  const response = await request(url(0));
  t.is(response.statusCode, 200);
  const read = (async () => {
    let bytes = 0;
    for await (const chunk of response.body) bytes += (chunk as Buffer).length;
    return bytes;
  })();
  source.end(bad.subarray(100_000));
  await t.throwsAsync(write);
  await t.throwsAsync(read, undefined, 'the body was cut, never ended');
  t.false(store.hasPiece(digest, 0));
});

test('a piece neither held nor arriving is a 404 after a short wait', async (t) => {
  const { url } = await relayingPeer(t);
  const startedAt = Date.now();
  const response = await request(url(2));
  await response.body.dump();
  t.is(response.statusCode, 404);
  t.true(Date.now() - startedAt < 5_000);
});

test('pieces still arriving take no send slot: a held piece is sent while relays wait for their bytes', async (t) => {
  // One relay per send slot, each stalled on a piece whose rest has not come:
  // were relays in the slots, the held piece would wait for one of them to end.
  const relays = PEER_SENDS_AT_ONCE;
  const { store, digest, piece, url } = await relayingPeer(t, relays + 1);
  const held = relays;
  await store.writePiece(digest, held, Readable.from([piece(held)]), { expectedSha256: sha256Hex(piece(held)) });
  const sources: PassThrough[] = [];
  const writes: Promise<unknown>[] = [];
  const bodies: Promise<Buffer>[] = [];
  for (let i = 0; i < relays; i++) {
    const source = new PassThrough();
    sources.push(source);
    writes.push(store.writePiece(digest, i, source, { expectedSha256: sha256Hex(piece(i)) }));
    source.write(piece(i).subarray(0, 100_000));
    const response = await request(url(i));
    t.is(response.statusCode, 200);
    bodies.push(
      (async () => {
        const chunks: Buffer[] = [];
        for await (const chunk of response.body) chunks.push(chunk as Buffer);
        return Buffer.concat(chunks);
      })(),
    );
  }
  const response = await request(url(held), { headersTimeout: 3_000, bodyTimeout: 3_000 });
  t.is(response.statusCode, 200);
  t.true(Buffer.from(await response.body.arrayBuffer()).equals(piece(held)), 'the held piece came whole while every relay still waited');
  for (let i = 0; i < relays; i++) (sources[i] as PassThrough).end(piece(i).subarray(100_000));
  await Promise.all(writes);
  const relayed = await Promise.all(bodies);
  for (let i = 0; i < relays; i++) t.true((relayed[i] as Buffer).equals(piece(i)));
});

/** A FAKE swarm that only says when this node's fill of a blob last received bytes. */
function fillingSince(progressAt: () => number | undefined): BlobProvider & { activeDownloads: number } {
  return { ...noSwarm, progressAt: () => progressAt() };
}

test('while the fill makes progress, a request waits past RELAY_WAIT_MS for its piece to begin arriving', async (t) => {
  const { store, digest, piece, url } = await relayingPeer(t, 3, fillingSince(() => Date.now()));
  const startedAt = Date.now();
  const answer = request(url(2));
  await new Promise((resolve) => setTimeout(resolve, RELAY_WAIT_MS + 1_000));
  const write = store.writePiece(digest, 2, Readable.from([piece(2)]), { expectedSha256: sha256Hex(piece(2)) });
  const response = await answer;
  t.is(response.statusCode, 200);
  t.true(Buffer.from(await response.body.arrayBuffer()).equals(piece(2)));
  await write;
  t.true(Date.now() - startedAt >= RELAY_WAIT_MS + 1_000);
});

test('a fill that made no progress lately is waited for RELAY_WAIT_MS; one that makes progress, RELAY_WAIT_MAX_MS at most', async (t) => {
  const stalledSince = Date.now() - 1_000;
  const stalled = await relayingPeer(t, 3, fillingSince(() => stalledSince));
  let startedAt = Date.now();
  let response = await request(stalled.url(2));
  await response.body.dump();
  t.is(response.statusCode, 404);
  const waited = Date.now() - startedAt;
  t.true(waited >= RELAY_WAIT_MS - 50 && waited < RELAY_WAIT_MS + 1_000, `waited ${waited} ms`);

  const moving = await relayingPeer(t, 3, fillingSince(() => Date.now()));
  startedAt = Date.now();
  response = await request(moving.url(2));
  await response.body.dump();
  t.is(response.statusCode, 404);
  const capped = Date.now() - startedAt;
  t.true(capped >= RELAY_WAIT_MAX_MS - 50 && capped < RELAY_WAIT_MAX_MS + 1_000, `waited ${capped} ms`);
});
