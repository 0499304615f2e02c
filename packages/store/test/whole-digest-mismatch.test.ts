import test from 'ava';
import { DigestMismatchError, digestOf, type Digest } from '@shoal/core';
import { MiB, blobFile, exists, makeBlob, openStore, partialFile, piece, streamOf } from './fixtures.js';

test('a blob whose pieces all match their hashes but not the blob digest is discarded', async (t) => {
  const { store, dir } = await openStore(t);
  const blob = makeBlob(3 * MiB + 17);
  // Claimed under another digest: every piece hash is right, the whole is not.
  const wrongDigest: Digest = digestOf('something else');
  await store.begin(wrongDigest, blob.data.length);
  await store.setPieceHashes(wrongDigest, blob.pieceSha256);
  const complete = store.waitForComplete(wrongDigest);
  const discarded = new Promise<Error>((resolve) => store.on('discarded', (digest, reason) => digest === wrongDigest && resolve(reason)));

  for (let i = blob.layout.pieceCount - 1; i >= 0; i--) await store.writePiece(wrongDigest, i, streamOf(piece(blob, i)));

  await t.throwsAsync(complete, { instanceOf: DigestMismatchError });
  t.true((await discarded) instanceof DigestMismatchError);
  t.is(store.get(wrongDigest), undefined);
  t.false(await exists(partialFile(dir, wrongDigest)));
  t.false(await exists(blobFile(dir, wrongDigest)));
  t.deepEqual(store.list(), []);
});
