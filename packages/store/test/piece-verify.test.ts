import test from 'ava';
import { DigestMismatchError, PieceUnavailableError } from '@shoal/core';
import { MiB, makeBlob, openStore, piece, streamOf, readAll } from './fixtures.js';

test('a piece with wrong bytes is rejected and never readable; the right bytes then verify', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(3 * MiB + 1234);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256);

  const wrong = Buffer.from(piece(blob, 1));
  wrong.writeUInt8(wrong.readUInt8(wrong.length - 1) ^ 0xff, wrong.length - 1);
  const pieces: number[] = [];
  store.on('piece', (_digest, index) => pieces.push(index));

  await t.throwsAsync(store.writePiece(blob.digest, 1, streamOf(wrong)), { instanceOf: DigestMismatchError });
  t.false(store.hasPiece(blob.digest, 1));
  t.is(store.get(blob.digest)?.verifiedCount, 0);
  t.throws(() => store.openPieceReader(blob.digest, 1), { instanceOf: PieceUnavailableError });
  t.deepEqual(pieces, []);

  await store.writePiece(blob.digest, 1, streamOf(piece(blob, 1)));
  t.true(store.hasPiece(blob.digest, 1));
  t.is(store.get(blob.digest)?.verifiedCount, 1);
  t.deepEqual(pieces, [1]);
  t.true((await readAll(store.openPieceReader(blob.digest, 1))).equals(piece(blob, 1)));

  // Ranges are blob offsets, inclusive.
  const start = blob.layout.pieceSizeBytes + 10;
  const part = await readAll(store.openPieceReader(blob.digest, 1, { start, end: start + 99 }));
  t.true(part.equals(blob.data.subarray(start, start + 100)));
});

test('an expected hash passed to writePiece is used and recorded', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(2 * MiB + 7);
  await store.begin(blob.digest, blob.data.length);
  await store.writePiece(blob.digest, 2, streamOf(piece(blob, 2)), { expectedSha256: blob.pieceSha256[2] as string });
  t.is(store.get(blob.digest)?.pieceSha256[2], blob.pieceSha256[2]);
  t.true(store.hasPiece(blob.digest, 2));
});

test('writing an already verified piece drains the source and resolves', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(2 * MiB);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256);
  await store.writePiece(blob.digest, 0, streamOf(piece(blob, 0)));
  const again = streamOf(piece(blob, 0));
  await store.writePiece(blob.digest, 0, again);
  t.true(again.readableEnded);
  t.is(store.get(blob.digest)?.verifiedCount, 1);
});
