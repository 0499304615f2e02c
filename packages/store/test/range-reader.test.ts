import test from 'ava';
import { BlobUnknownError, PieceUnavailableError, RangeInvalidError, digestOf } from '@shoal/core';
import type { PieceStore } from '../src/index.js';
import { MiB, makeBlob, openStore, piece, readAll, streamOf } from './fixtures.js';

/** Begins `blob` with its piece hashes and stores the pieces listed. */
async function partial(store: PieceStore, blob: ReturnType<typeof makeBlob>, pieces: number[]): Promise<void> {
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256);
  for (const index of pieces) await store.writePiece(blob.digest, index, streamOf(piece(blob, index)));
}

test('a reader gives a complete blob, or any range of it, into the caller\'s buffers', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(3 * MiB + 777);
  await store.ingest(blob.digest, blob.data.length, streamOf(blob.data));

  t.true((await readAll(store.openReader(blob.digest))).equals(blob.data));
  // Odd buffer sizes and ranges that cross piece boundaries.
  for (const [start, end, chunk] of [
    [0, 0, 1],
    [MiB - 3, MiB + 2, 4],
    [12_345, 3 * MiB + 776, 100_003],
  ] as const) {
    t.true((await readAll(store.openReader(blob.digest, { start, end }), chunk)).equals(blob.data.subarray(start, end + 1)), `bytes ${start}-${end}`);
  }
  t.throws(() => store.openReader(blob.digest, { start: 5, end: blob.data.length }), { instanceOf: RangeInvalidError });
  t.throws(() => store.openReader(blob.digest, { start: 9, end: 8 }), { instanceOf: RangeInvalidError });
  t.throws(() => store.openReader(digestOf('unknown')), { instanceOf: BlobUnknownError });
});

test('on a partial blob a reader reads verified pieces only, and refuses the first byte of one that is not', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(4 * MiB);
  await partial(store, blob, [0, 1, 3]);

  const reader = store.openReader(blob.digest);
  const into = Buffer.alloc(3 * MiB);
  // One read covers the verified run (pieces 0 and 1) and stops before piece 2.
  t.is(await reader.read(into), 2 * MiB);
  t.true(into.subarray(0, 2 * MiB).equals(blob.data.subarray(0, 2 * MiB)));
  await t.throwsAsync(reader.read(into), { instanceOf: PieceUnavailableError });

  // Once piece 2 is verified the same reader goes on to the end.
  await store.writePiece(blob.digest, 2, streamOf(piece(blob, 2)));
  t.is(await reader.read(into), 2 * MiB);
  t.true(into.subarray(0, 2 * MiB).equals(blob.data.subarray(2 * MiB)));
  t.is(await reader.read(into), 0);
  reader.close();
  reader.close();
  await t.throwsAsync(reader.read(into), { message: /closed/ });
});

test('a reader opened on a partial blob goes on reading after the blob completes and is renamed', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(2 * MiB);
  await partial(store, blob, [0]);
  const reader = store.openReader(blob.digest);
  const into = Buffer.alloc(MiB);
  t.is(await reader.read(into), MiB);
  await store.writePiece(blob.digest, 1, streamOf(piece(blob, 1)));
  await store.waitForComplete(blob.digest);
  t.is(await reader.read(into), MiB);
  t.true(into.equals(piece(blob, 1)));
  reader.close();

  // Opened after the rename, before its first read: the file is found in blobs/.
  const late = store.openReader(blob.digest);
  t.true((await readAll(late)).equals(blob.data));
});

test('a partial blob deleted under an open reader fails the reader\'s next read (its bytes are no longer vouched for)', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(2 * MiB);
  await partial(store, blob, [0]);
  const reader = store.openReader(blob.digest);
  await store.delete(blob.digest);
  await t.throwsAsync(reader.read(Buffer.alloc(MiB)), { instanceOf: BlobUnknownError });
  reader.close();
});
