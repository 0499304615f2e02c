import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { MiB, blobFile, makeBlob, openStore, piece, shuffled, streamOf, readAll } from './fixtures.js';

test('pieces written out of order complete the blob, and the file equals the source', async (t) => {
  const { store, dir } = await openStore(t);
  const blob = makeBlob(5 * MiB + 4321);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256);
  const completed: string[] = [];
  store.on('complete', (digest) => completed.push(digest));
  const done = store.waitForComplete(blob.digest);

  const order = shuffled(Array.from({ length: blob.layout.pieceCount }, (_, i) => i));
  // Piece 0 last, so the prefix hash has to be caught up from disk at the end.
  order.splice(order.indexOf(0), 1);
  order.push(0);
  for (const index of order) await store.writePiece(blob.digest, index, streamOf(piece(blob, index)));
  await done;

  t.deepEqual(completed, [blob.digest]);
  const record = store.get(blob.digest);
  t.true(record?.complete);
  t.is(record?.verifiedCount, blob.layout.pieceCount);
  t.true((await readFile(blobFile(dir, blob.digest))).equals(blob.data));
  t.deepEqual(await readdir(join(dir, 'partial', 'sha256')), []);
  t.true((await readAll(store.openReader(blob.digest))).equals(blob.data));
  const range = await readAll(store.openReader(blob.digest, { start: 100, end: 2 * MiB }));
  t.true(range.equals(blob.data.subarray(100, 2 * MiB + 1)));
  // Pieces of a complete blob stay readable.
  t.true((await readAll(store.openPieceReader(blob.digest, 3))).equals(piece(blob, 3)));
});

test('pieces written concurrently in any order complete the blob', async (t) => {
  const { store, dir } = await openStore(t);
  const blob = makeBlob(6 * MiB + 1);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256);
  const indexes = shuffled(Array.from({ length: blob.layout.pieceCount }, (_, i) => i));
  await Promise.all(indexes.map((i) => store.writePiece(blob.digest, i, streamOf(piece(blob, i), 16 * 1024))));
  await store.waitForComplete(blob.digest);
  t.true((await readFile(blobFile(dir, blob.digest))).equals(blob.data));
});

test('pieces written in order complete the blob', async (t) => {
  const { store, dir } = await openStore(t);
  const blob = makeBlob(4 * MiB + 99);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256);
  for (let i = 0; i < blob.layout.pieceCount; i++) await store.writePiece(blob.digest, i, streamOf(piece(blob, i)));
  await store.waitForComplete(blob.digest);
  t.true((await readFile(blobFile(dir, blob.digest))).equals(blob.data));
});
