import test from 'ava';
import { BadRequestError, BlobUnknownError, DigestMismatchError, digestOf } from '@shoal/core';
import { MiB, makeBlob, openStore, piece, streamOf } from './fixtures.js';

test('setPieceHashes fills unknown hashes and refuses contradictions', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(3 * MiB);
  await store.begin(blob.digest, blob.data.length);
  const [h0, h1, h2] = blob.pieceSha256 as [string, string, string];

  await store.setPieceHashes(blob.digest, [h0, null, null]);
  t.deepEqual(store.get(blob.digest)?.pieceSha256, [h0, null, null]);
  await store.setPieceHashes(blob.digest, [h0, h1, null]);
  t.deepEqual(store.get(blob.digest)?.pieceSha256, [h0, h1, null]);

  await t.throwsAsync(store.setPieceHashes(blob.digest, [h1, null, h2]), { instanceOf: DigestMismatchError });
  // Nothing of a refused list is taken.
  t.deepEqual(store.get(blob.digest)?.pieceSha256, [h0, h1, null]);
  await t.throwsAsync(store.setPieceHashes(blob.digest, [h0, h1]), { instanceOf: BadRequestError });
  await t.throwsAsync(store.setPieceHashes(blob.digest, [h0, h1, 'ABC']), { instanceOf: BadRequestError });
  await t.throwsAsync(store.setPieceHashes(digestOf('unknown'), []), { instanceOf: BlobUnknownError });
});

test('writePiece needs an expected hash, and one that agrees with the record', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(2 * MiB);
  await store.begin(blob.digest, blob.data.length);
  await t.throwsAsync(store.writePiece(blob.digest, 0, streamOf(piece(blob, 0))), { instanceOf: BadRequestError });
  await store.setPieceHashes(blob.digest, blob.pieceSha256);
  await t.throwsAsync(store.writePiece(blob.digest, 0, streamOf(piece(blob, 0)), { expectedSha256: blob.pieceSha256[1] as string }), {
    instanceOf: DigestMismatchError,
  });
  t.false(store.hasPiece(blob.digest, 0));
});
