import { readFile } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import test from 'ava';
import { DigestMismatchError, SizeMismatchError } from '@shoal/core';
import { MiB, makeBlob, openStore, partialFile, piece, streamOf, readAll } from './fixtures.js';

test('concurrent begin calls for one digest return the same record', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(2 * MiB);
  const records = await Promise.all(Array.from({ length: 10 }, () => store.begin(blob.digest, blob.data.length)));
  t.true(records.every((r) => r === records[0]));
  t.is(store.list().length, 1);
  await t.throwsAsync(store.begin(blob.digest, blob.data.length + 1), { instanceOf: SizeMismatchError });
});

test('two writers of the same piece do not corrupt it, whichever is right', async (t) => {
  const { store, dir } = await openStore(t);
  const blob = makeBlob(3 * MiB);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256);
  const good = piece(blob, 1);
  const bad = Buffer.from(good);
  bad.fill(0x55, 1000, 2000);

  // The wrong writer starts first and stalls mid-piece; the right one must not interleave with it.
  const slow = new PassThrough();
  const wrong = store.writePiece(blob.digest, 1, slow);
  slow.write(bad.subarray(0, MiB / 2));
  const right = store.writePiece(blob.digest, 1, streamOf(good));
  await new Promise((resolve) => setTimeout(resolve, 50));
  slow.end(bad.subarray(MiB / 2));
  await t.throwsAsync(wrong, { instanceOf: DigestMismatchError });
  await right;

  t.true(store.hasPiece(blob.digest, 1));
  t.true((await readAll(store.openPieceReader(blob.digest, 1))).equals(good));
  const onDisk = await readFile(partialFile(dir, blob.digest));
  t.true(onDisk.subarray(MiB, 2 * MiB).equals(good));

  // Two right writers at once: one writes, the other drains.
  await Promise.all([store.writePiece(blob.digest, 0, streamOf(piece(blob, 0))), store.writePiece(blob.digest, 0, streamOf(piece(blob, 0)))]);
  t.is(store.get(blob.digest)?.verifiedCount, 2);
});

test('an aborted write rejects with the reason and records nothing', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(2 * MiB);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256);
  const abort = new AbortController();
  const reason = new Error('parent went away');
  const body = new PassThrough();
  const writing = store.writePiece(blob.digest, 0, body, { signal: abort.signal });
  body.write(piece(blob, 0).subarray(0, 1000));
  setTimeout(() => abort.abort(reason), 20);
  t.is(await t.throwsAsync(writing), reason);
  t.false(store.hasPiece(blob.digest, 0));
  t.true(body.destroyed);
  // The piece lock was released: a later writer gets through.
  await store.writePiece(blob.digest, 0, streamOf(piece(blob, 0)));
  t.true(store.hasPiece(blob.digest, 0));
});
