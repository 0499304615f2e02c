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

test('while certification is expected the store does not hash the blob whole: wrong bytes are neither completed nor discarded until it comes', async (t) => {
  // The bytes are not the digest's. Hashed whole here, the blob would be discarded
  // as soon as its last piece landed; waiting, it stays as it is until certified.
  const { store } = await openStore(t);
  const blob = makeBlob(3 * MiB);
  const other = makeBlob(3 * MiB);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, other.pieceSha256, { certificationExpected: true });
  for (const i of [1, 0, 2]) await store.writePiece(blob.digest, i, streamOf(piece(other, i)));
  const completed = store.waitForComplete(blob.digest).then(() => 'complete', (err: unknown) => `failed: ${String(err)}`);
  const early = await Promise.race([completed, new Promise((r) => setTimeout(() => r('waiting'), 300))]);
  t.is(early, 'waiting');
  t.is(store.get(blob.digest)?.verifiedCount, 3);
  await store.setPieceHashes(blob.digest, other.pieceSha256, { certified: true });
  t.is(await completed, 'complete');
});

test('when the expected certification is not coming, resumeWholeDigest hashes the blob here: right bytes complete, wrong ones are discarded', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(3 * MiB + 5);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256, { certificationExpected: true });
  for (const i of [3, 0, 2, 1]) await store.writePiece(blob.digest, i, streamOf(piece(blob, i)));
  t.false(store.get(blob.digest)?.complete);
  store.resumeWholeDigest(blob.digest);
  await store.waitForComplete(blob.digest);
  t.true((await readAll(store.openReader(blob.digest))).equals(blob.data));

  const wrongDigest = makeBlob(2 * MiB);
  const other = makeBlob(2 * MiB);
  await store.begin(wrongDigest.digest, wrongDigest.data.length);
  await store.setPieceHashes(wrongDigest.digest, other.pieceSha256, { certificationExpected: true });
  for (const i of [0, 1]) await store.writePiece(wrongDigest.digest, i, streamOf(piece(other, i)));
  store.resumeWholeDigest(wrongDigest.digest);
  await t.throwsAsync(store.waitForComplete(wrongDigest.digest), { instanceOf: DigestMismatchError });
  t.is(store.get(wrongDigest.digest), undefined);
});

test('an ingest into a blob that awaits certification completes it: it hashes the whole as it goes', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(2 * MiB + 9);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256, { certificationExpected: true });
  await store.writePiece(blob.digest, 1, streamOf(piece(blob, 1)));
  await store.ingest(blob.digest, blob.data.length, streamOf(blob.data));
  t.true(store.get(blob.digest)?.complete);
});

test('isDigestVerified is false for an unknown blob and before the last piece, and true once the bytes matched the digest, before or with complete', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(2 * MiB + 3);
  t.false(store.isDigestVerified(blob.digest));
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256);
  await store.writePiece(blob.digest, 0, streamOf(piece(blob, 0)));
  t.false(store.isDigestVerified(blob.digest));
  for (const i of [2, 1]) await store.writePiece(blob.digest, i, streamOf(piece(blob, i)));
  await store.waitForVerified(blob.digest);
  t.true(store.isDigestVerified(blob.digest));
  await store.waitForComplete(blob.digest);
  t.true(store.isDigestVerified(blob.digest));
});
