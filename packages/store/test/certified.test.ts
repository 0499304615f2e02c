import test from 'ava';
import { BadRequestError, DigestMismatchError } from '@shoal/core';
import { MiB, makeBlob, openStore, piece, streamOf, readAll } from './fixtures.js';

test('certified piece hashes complete a blob once every piece matches, without hashing it whole again', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(3 * MiB + 7);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256, { certified: true });
  for (const i of [2, 0, 3, 1]) await store.writePiece(blob.digest, i, streamOf(piece(blob, i)));
  await store.waitForComplete(blob.digest);
  t.true((await readAll(store.openReader(blob.digest))).equals(blob.data));
});

test('certified hashes are trusted as they are: the holder vouched for the whole, so it is not hashed here', async (t) => {
  // The trust boundary, stated as a test: hashes of other bytes under this digest
  // complete when certified (uncertified, wait-verified.test.ts shows they are refused).
  const { store } = await openStore(t);
  const blob = makeBlob(2 * MiB);
  const other = makeBlob(2 * MiB);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, other.pieceSha256, { certified: true });
  for (const i of [0, 1]) await store.writePiece(blob.digest, i, streamOf(piece(other, i)));
  await store.waitForComplete(blob.digest);
  t.pass();
});

test('a certified list must be whole, and certification does not let a wrong piece in', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(2 * MiB);
  await store.begin(blob.digest, blob.data.length);
  await t.throwsAsync(store.setPieceHashes(blob.digest, [blob.pieceSha256[0] ?? null, null], { certified: true }), { instanceOf: BadRequestError });
  await store.setPieceHashes(blob.digest, blob.pieceSha256, { certified: true });
  const wrong = Buffer.from(piece(blob, 1));
  wrong[0] = (wrong[0] ?? 0) ^ 1;
  await t.throwsAsync(store.writePiece(blob.digest, 1, streamOf(wrong)), { instanceOf: DigestMismatchError });
  t.false(store.hasPiece(blob.digest, 1));
});

test('hashes certified while a blob is being filled stop its whole-blob pass: it completes on its pieces alone', async (t) => {
  // As above, the bytes are not the digest's: only certification can complete the
  // blob. The first pieces were already hashed into the prefix before it came.
  const { store } = await openStore(t);
  const blob = makeBlob(4 * MiB);
  const other = makeBlob(4 * MiB);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, other.pieceSha256);
  for (const i of [0, 1]) await store.writePiece(blob.digest, i, streamOf(piece(other, i)));
  await store.setPieceHashes(blob.digest, other.pieceSha256, { certified: true });
  for (const i of [3, 2]) await store.writePiece(blob.digest, i, streamOf(piece(other, i)));
  await store.waitForComplete(blob.digest);
  t.true((await readAll(store.openReader(blob.digest))).equals(other.data));
});
