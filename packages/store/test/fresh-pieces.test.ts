import { open } from 'node:fs/promises';
import test from 'ava';
import { CorruptAtRestError, DigestMismatchError, digestOf, type ChunkReader, type Digest } from '@shoal/core';
import { MiB, blobFile, makeBlob, openStoreWith, partialFile, piece, streamOf } from './fixtures.js';

// Pieces just verified are kept in memory (freshPieceBytes) and served from there
// to the readers right behind the writer, without reading them back from disk and
// hashing them again. These tests hold the guards that keep that safe: only bytes
// that matched their hash are ever kept, a complete or discarded blob keeps none
// (later reads go to the disk and its check at rest), and the whole-digest check
// still sees every byte.

async function flip16(path: string, offset: number): Promise<void> {
  const fh = await open(path, 'r+');
  const bytes = Buffer.alloc(16);
  await fh.read(bytes, 0, 16, offset);
  for (let i = 0; i < 16; i++) bytes[i] = (bytes[i] ?? 0) ^ 0xff;
  await fh.write(bytes, 0, 16, offset);
  await fh.close();
}

async function readOut(reader: ChunkReader, bufferBytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  try {
    for (;;) {
      const into = Buffer.alloc(bufferBytes);
      const count = await reader.read(into);
      if (count === 0) return Buffer.concat(parts);
      parts.push(into.subarray(0, count));
    }
  } finally {
    reader.close();
  }
}

test('a piece just verified is read from memory, exactly as it arrived, whatever the chunk and read sizes', async (t) => {
  const { store, dir } = await openStoreWith(t, { freshPieceBytes: 16 * MiB });
  const blob = makeBlob(3 * MiB + 12_345);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256);
  await store.writePiece(blob.digest, 1, streamOf(piece(blob, 1), 7_777));
  await store.writePiece(blob.digest, 3, streamOf(piece(blob, 3), 1_000));
  t.is(store.freshBytes, 2 * MiB, 'both pieces held, each counted at the piece size');
  // The disk copy changes under the store: a read from memory never sees it.
  await flip16(partialFile(dir, blob.digest), MiB + 5_000);
  const middle = await readOut(store.openReader(blob.digest, { start: MiB + 3_000, end: 2 * MiB - 1 }), 3_000);
  t.true(middle.equals(blob.data.subarray(MiB + 3_000, 2 * MiB)));
  t.true((await readOut(store.openPieceReader(blob.digest, 3), 64 * 1024)).equals(piece(blob, 3)));
  t.truthy(store.get(blob.digest), 'nothing was read from disk, so nothing looked corrupt');
});

test('bytes that failed their hash are never served from memory, even with no room left for the right ones', async (t) => {
  // Room for four pieces of 1 MiB: the wrong bytes would be the piece held when the right ones find no room.
  const { store } = await openStoreWith(t, { freshPieceBytes: 4 * MiB });
  const blob = makeBlob(6 * MiB);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256);
  const wrong = Buffer.from(piece(blob, 0));
  wrong[100] = (wrong[100] ?? 0) ^ 1;
  await t.throwsAsync(store.writePiece(blob.digest, 0, streamOf(wrong)), { instanceOf: DigestMismatchError });
  t.is(store.freshBytes, 0, 'the failed capture gave its room back');
  for (const index of [1, 2, 3, 4]) await store.writePiece(blob.digest, index, streamOf(piece(blob, index)));
  t.is(store.freshBytes, 4 * MiB, 'memory full of unread pieces');
  await store.writePiece(blob.digest, 0, streamOf(piece(blob, 0)));
  t.true((await readOut(store.openPieceReader(blob.digest, 0), MiB)).equals(piece(blob, 0)), 'piece 0 read as verified (from disk: no room in memory)');
});

test('a blob that completes keeps nothing in memory: its later reads are checked at rest', async (t) => {
  const { store, dir } = await openStoreWith(t, { freshPieceBytes: 16 * MiB });
  const blob = makeBlob(3 * MiB + 1);
  await store.ingest(blob.digest, blob.data.length, streamOf(blob.data));
  t.true(store.get(blob.digest)?.complete);
  t.is(store.freshBytes, 0);
  await flip16(blobFile(dir, blob.digest), MiB + 10);
  const reader = store.openReader(blob.digest, { start: MiB, end: 2 * MiB - 1 });
  await t.throwsAsync(reader.read(Buffer.alloc(MiB)), { instanceOf: CorruptAtRestError });
  reader.close();
  t.is(store.get(blob.digest), undefined, 'the rotten blob is dropped, as without the cache');
});

test('a discarded blob keeps nothing in memory, and one begun again under its digest serves nothing of the old one', async (t) => {
  const { store } = await openStoreWith(t, { freshPieceBytes: 16 * MiB });
  const blob = makeBlob(2 * MiB);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256);
  await store.writePiece(blob.digest, 0, streamOf(piece(blob, 0)));
  t.is(store.freshBytes, MiB);
  await store.delete(blob.digest);
  t.is(store.freshBytes, 0);
  await store.begin(blob.digest, blob.data.length);
  t.false(store.hasPiece(blob.digest, 0));
  t.throws(() => store.openPieceReader(blob.digest, 0), { code: 'SHOAL_PIECE_UNAVAILABLE' });
});

test('pieces that each match but assemble to another digest are still caught when the whole-digest pass reads them from memory', async (t) => {
  const { store } = await openStoreWith(t, { freshPieceBytes: 16 * MiB });
  const blob = makeBlob(3 * MiB + 17);
  const wrongDigest: Digest = digestOf('something else');
  await store.begin(wrongDigest, blob.data.length);
  await store.setPieceHashes(wrongDigest, blob.pieceSha256);
  const complete = store.waitForComplete(wrongDigest);
  // Last piece first: the pass finds the pieces in memory once piece 0 lands.
  for (let i = blob.layout.pieceCount - 1; i >= 0; i--) await store.writePiece(wrongDigest, i, streamOf(piece(blob, i)));
  await t.throwsAsync(complete, { instanceOf: DigestMismatchError });
  t.is(store.get(wrongDigest), undefined);
  t.is(store.freshBytes, 0);
});
