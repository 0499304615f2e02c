import test from 'ava';
import { SizeMismatchError } from '@shoal/core';
import { MiB, makeBlob, openStore, piece, streamOf, readAll } from './fixtures.js';

test('a too-short piece is rejected and not recorded', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(3 * MiB + 5);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256);
  const short = piece(blob, 0).subarray(0, blob.layout.pieceSizeBytes - 1);
  await t.throwsAsync(store.writePiece(blob.digest, 0, streamOf(short)), { instanceOf: SizeMismatchError });
  t.false(store.hasPiece(blob.digest, 0));
  t.is(store.get(blob.digest)?.verifiedCount, 0);
});

test('a too-long piece is rejected without touching the next piece', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(3 * MiB + 5);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256);
  await store.writePiece(blob.digest, 1, streamOf(piece(blob, 1)));

  // Piece 0 followed by garbage that would overwrite the start of piece 1.
  const long = Buffer.concat([piece(blob, 0), Buffer.alloc(4096, 0xee)]);
  await t.throwsAsync(store.writePiece(blob.digest, 0, streamOf(long)), { instanceOf: SizeMismatchError });
  t.false(store.hasPiece(blob.digest, 0));
  t.true((await readAll(store.openPieceReader(blob.digest, 1))).equals(piece(blob, 1)));

  // The short last piece has its own length.
  const last = blob.layout.pieceCount - 1;
  const tooLongLast = Buffer.concat([piece(blob, last), Buffer.from([1])]);
  await t.throwsAsync(store.writePiece(blob.digest, last, streamOf(tooLongLast)), { instanceOf: SizeMismatchError });
  t.false(store.hasPiece(blob.digest, last));
});
