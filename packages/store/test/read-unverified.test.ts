import test from 'ava';
import { BadRequestError, BlobUnknownError, PieceUnavailableError, RangeInvalidError, digestOf } from '@shoal/core';
import { MiB, makeBlob, openStore, piece, streamOf, readAll } from './fixtures.js';

test('reading an unverified piece, a partial blob or an unknown blob throws', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(3 * MiB);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256);
  await store.writePiece(blob.digest, 1, streamOf(piece(blob, 1)));

  t.throws(() => store.openPieceReader(blob.digest, 0), { instanceOf: PieceUnavailableError });
  t.throws(() => store.openPieceReader(blob.digest, 2), { instanceOf: PieceUnavailableError });
  // A partial blob's reader refuses at the first piece that is not verified.
  await t.throwsAsync(readAll(store.openReader(blob.digest)), { instanceOf: PieceUnavailableError });
  t.throws(() => store.openPieceReader(digestOf('unknown'), 0), { instanceOf: PieceUnavailableError });
  t.throws(() => store.openReader(digestOf('unknown')), { instanceOf: BlobUnknownError });
  t.false(store.hasPiece(blob.digest, 0));
  t.false(store.hasPiece(blob.digest, 99));
});

test('piece indexes and ranges are checked', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(3 * MiB);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256);
  await store.writePiece(blob.digest, 1, streamOf(piece(blob, 1)));

  t.throws(() => store.openPieceReader(blob.digest, 3), { instanceOf: BadRequestError });
  t.throws(() => store.openPieceReader(blob.digest, -1), { instanceOf: BadRequestError });
  t.throws(() => store.openPieceReader(blob.digest, 1.5), { instanceOf: BadRequestError });
  await t.throwsAsync(store.writePiece(blob.digest, 3, streamOf(Buffer.alloc(1))), { instanceOf: BadRequestError });
  await t.throwsAsync(store.waitForPiece(blob.digest, 3), { instanceOf: BadRequestError });
  // Ranges must stay inside the piece (blob offsets).
  t.throws(() => store.openPieceReader(blob.digest, 1, { start: 0, end: 10 }), { instanceOf: RangeInvalidError });
  t.throws(() => store.openPieceReader(blob.digest, 1, { start: MiB, end: 2 * MiB }), { instanceOf: RangeInvalidError });
  t.throws(() => store.openPieceReader(blob.digest, 1, { start: MiB + 5, end: MiB + 4 }), { instanceOf: RangeInvalidError });
  await t.throwsAsync(store.begin(blob.digest, -1), { instanceOf: BadRequestError });
});
