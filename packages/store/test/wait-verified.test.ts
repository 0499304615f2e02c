import test from 'ava';
import { DigestMismatchError } from '@shoal/core';
import { MiB, makeBlob, openStore, piece, streamOf } from './fixtures.js';

// Regression: readers waited for `complete` (after a datasync and a rename)
// before getting a blob's last bytes; on a busy disk the datasync took long
// enough for the proxy to cut the body. They now wait for the digest match only.
test('waitForVerified resolves when the assembled bytes match the digest, no later than complete', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(3 * MiB + 5);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256);
  const order: string[] = [];
  const verified = store.waitForVerified(blob.digest).then(() => order.push('verified'));
  const complete = store.waitForComplete(blob.digest).then(() => order.push('complete'));
  for (const i of [3, 1, 0, 2]) await store.writePiece(blob.digest, i, streamOf(piece(blob, i)));
  await Promise.all([verified, complete]);
  t.deepEqual(order, ['verified', 'complete']);
  await store.waitForVerified(blob.digest); // already true: at once
});

test('waitForVerified rejects when the pieces assemble to another digest', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(2 * MiB);
  const other = makeBlob(2 * MiB);
  // Hashes of other bytes under this digest: every piece checks out, the whole does not.
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, other.pieceSha256);
  const verified = store.waitForVerified(blob.digest);
  for (const i of [0, 1]) await store.writePiece(blob.digest, i, streamOf(piece(other, i)));
  await t.throwsAsync(verified, { instanceOf: DigestMismatchError });
});
