import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { DigestMismatchError, SizeMismatchError } from '@shoal/core';
import { MiB, makeBlob, openStore, streamOf } from './fixtures.js';

test('ingest of wrong bytes rejects, discards the blob and leaves no file', async (t) => {
  const { store, dir } = await openStore(t);
  const blob = makeBlob(3 * MiB + 10);
  const wrong = Buffer.from(blob.data);
  wrong.writeUInt8((wrong.readUInt8(2 * MiB) ^ 0x01), 2 * MiB);
  const waiting = store.begin(blob.digest, blob.data.length).then(() => store.waitForComplete(blob.digest));

  await t.throwsAsync(store.ingest(blob.digest, blob.data.length, streamOf(wrong)), { instanceOf: DigestMismatchError });
  await t.throwsAsync(waiting, { instanceOf: DigestMismatchError });
  t.is(store.get(blob.digest), undefined);
  t.deepEqual(await readdir(join(dir, 'partial', 'sha256')), []);
  t.deepEqual(await readdir(join(dir, 'blobs', 'sha256')), []);
});

test('ingest of too few or too many bytes rejects with SizeMismatchError and leaves no file', async (t) => {
  const { store, dir } = await openStore(t);
  const blob = makeBlob(2 * MiB + 10);
  await t.throwsAsync(store.ingest(blob.digest, blob.data.length, streamOf(blob.data.subarray(0, blob.data.length - 1))), {
    instanceOf: SizeMismatchError,
  });
  t.is(store.get(blob.digest), undefined);
  await t.throwsAsync(store.ingest(blob.digest, blob.data.length, streamOf(Buffer.concat([blob.data, Buffer.from('x')]))), {
    instanceOf: SizeMismatchError,
  });
  t.is(store.get(blob.digest), undefined);
  t.deepEqual(await readdir(join(dir, 'partial', 'sha256')), []);
  t.deepEqual(await readdir(join(dir, 'blobs', 'sha256')), []);
});

test('ingest of bytes that contradict a recorded piece hash rejects and discards', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(2 * MiB + 10);
  const other = makeBlob(2 * MiB + 10);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256);
  await t.throwsAsync(store.ingest(blob.digest, blob.data.length, streamOf(other.data)), { instanceOf: DigestMismatchError });
  t.is(store.get(blob.digest), undefined);
});
