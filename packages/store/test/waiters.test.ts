import test from 'ava';
import { BlobUnknownError, DigestMismatchError, digestOf } from '@shoal/core';
import { MiB, makeBlob, openStore, piece, streamOf } from './fixtures.js';

test('waitForPiece and waitForComplete resolve when the piece and the blob verify', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(2 * MiB + 3);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256);
  const order: string[] = [];
  const p1 = store.waitForPiece(blob.digest, 1).then(() => order.push('piece 1'));
  const all = store.waitForComplete(blob.digest).then(() => order.push('complete'));
  await store.writePiece(blob.digest, 1, streamOf(piece(blob, 1)));
  await p1;
  t.deepEqual(order, ['piece 1']);
  for (const i of [0, 2]) await store.writePiece(blob.digest, i, streamOf(piece(blob, i)));
  await all;
  t.deepEqual(order, ['piece 1', 'complete']);
  // Already true: resolve at once.
  await store.waitForPiece(blob.digest, 0);
  await store.waitForComplete(blob.digest);
  t.is(store.waiterCount, 0);
});

test('waiters reject with the abort reason and leave nothing behind', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(2 * MiB);
  await store.begin(blob.digest, blob.data.length);
  const abort = new AbortController();
  const reason = new Error('client went away');
  const waiting = store.waitForPiece(blob.digest, 0, { signal: abort.signal });
  const complete = store.waitForComplete(blob.digest, { signal: abort.signal });
  t.is(store.waiterCount, 2);
  abort.abort(reason);
  t.is(await t.throwsAsync(waiting), reason);
  t.is(await t.throwsAsync(complete), reason);
  t.is(store.waiterCount, 0);
  await t.throwsAsync(store.waitForPiece(blob.digest, 0, { signal: AbortSignal.abort(reason) }), { is: reason });
});

test('waiters reject when the blob is discarded or unknown', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(2 * MiB);
  const wrongDigest = digestOf('not this blob');
  await store.begin(wrongDigest, blob.data.length);
  await store.setPieceHashes(wrongDigest, blob.pieceSha256);
  const waiting = store.waitForComplete(wrongDigest);
  for (let i = 0; i < blob.layout.pieceCount; i++) await store.writePiece(wrongDigest, i, streamOf(piece(blob, i)));
  await t.throwsAsync(waiting, { instanceOf: DigestMismatchError });
  await t.throwsAsync(store.waitForPiece(wrongDigest, 0), { instanceOf: BlobUnknownError });

  await store.begin(blob.digest, blob.data.length);
  const deleted = store.waitForPiece(blob.digest, 1);
  await store.delete(blob.digest);
  await t.throwsAsync(deleted, { instanceOf: BlobUnknownError });
  t.is(store.waiterCount, 0);
});

test('a thousand waiters on one blob need no emitter listeners and raise no warning', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(2 * MiB);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256);
  const warnings: Error[] = [];
  const onWarning = (w: Error): number => warnings.push(w);
  process.on('warning', onWarning);
  t.teardown(() => process.off('warning', onWarning));

  const waiting = Array.from({ length: 1000 }, () => store.waitForPiece(blob.digest, 0));
  t.is(store.waiterCount, 1000);
  t.is(store.listenerCount('piece') + store.listenerCount('discarded') + store.listenerCount('complete'), 0);
  await store.writePiece(blob.digest, 0, streamOf(piece(blob, 0)));
  await Promise.all(waiting);
  t.is(store.waiterCount, 0);
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(warnings, []);
});

test('closing the store rejects pending waiters', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(2 * MiB);
  await store.begin(blob.digest, blob.data.length);
  const waiting = store.waitForComplete(blob.digest);
  await store.close();
  await t.throwsAsync(waiting, { message: /closed/ });
});
