import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { DigestMismatchError, HEADER, silentLogger, type Digest } from '@shoal/core';
import { PieceStore } from '@shoal/store';
import { SupernodeClient } from '../src/index.js';

const MiB = 1024 * 1024;

/**
 * A real HTTP server in the supernode's place, answering a piece the way a
 * cut-through send does: chunked, the hash announced in `Trailer` and sent
 * after the bytes (`trailerSha` decides what that trailer says, or none).
 */
async function cutThroughServer(t: ExecutionContext, bytes: Buffer, trailerSha: string | undefined): Promise<string> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { trailer: HEADER.pieceSha256, 'content-type': 'application/octet-stream' });
    res.write(bytes.subarray(0, 1000));
    setTimeout(() => {
      res.write(bytes.subarray(1000));
      if (trailerSha !== undefined) res.addTrailers({ [HEADER.pieceSha256]: trailerSha });
      res.end();
    }, 30);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function storeFor(t: ExecutionContext, data: Buffer): Promise<{ store: PieceStore; digest: Digest }> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-cut-through-client-'));
  const store = await PieceStore.open({ log: silentLogger() }, { dir });
  t.teardown(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
  await store.begin(digest, data.length);
  return { store, digest };
}

for (const [title, trailer, stored] of [
  ['the right hash in the trailer: the piece is stored', 'right', true],
  ['a wrong hash in the trailer: the piece is refused', 'wrong', false],
  ['no trailer at all: the piece is refused', 'none', false],
] as const) {
  test(`a piece sent while it arrives, ${title}`, async (t) => {
    const data = randomBytes(MiB);
    const sha = createHash('sha256').update(data).digest('hex');
    const url = await cutThroughServer(t, data, trailer === 'right' ? sha : trailer === 'wrong' ? createHash('sha256').update('other').digest('hex') : undefined);
    const { store, digest } = await storeFor(t, data);
    const client = new SupernodeClient({ log: silentLogger() }, { supernodeUrls: [url], token: undefined });
    t.teardown(() => client.close());

    const r = await client.fetchPiece(url, digest, 0);
    t.is(typeof r.sha256, 'function', 'the hash is to come after the bytes');
    const writing = store.writePiece(digest, 0, r.body, { expectedSha256: r.sha256 });
    if (stored) {
      await writing;
      t.true(store.hasPiece(digest, 0));
    } else {
      await t.throwsAsync(writing, { instanceOf: DigestMismatchError });
      t.false(store.hasPiece(digest, 0));
    }
  });
}
