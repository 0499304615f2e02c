import { readFile } from 'node:fs/promises';
import test from 'ava';
import { MiB, blobFile, makeBlob, openStore, streamOf, readAll } from './fixtures.js';

test('ingest records the real piece hashes, emits every piece and completes the blob', async (t) => {
  const { store, dir } = await openStore(t);
  const blob = makeBlob(4 * MiB + 333);
  const pieces: number[] = [];
  store.on('piece', (digest, index) => digest === blob.digest && pieces.push(index));

  // Odd chunk size, so chunks straddle piece boundaries.
  await store.ingest(blob.digest, blob.data.length, streamOf(blob.data, 100_003));

  const record = store.get(blob.digest);
  t.true(record?.complete);
  t.deepEqual(record?.pieceSha256, blob.pieceSha256);
  t.deepEqual(pieces, Array.from({ length: blob.layout.pieceCount }, (_, i) => i));
  t.true((await readFile(blobFile(dir, blob.digest))).equals(blob.data));
  t.true((await readAll(store.openReader(blob.digest))).equals(blob.data));
});

test('ingest of a blob that is already complete drains the source and resolves', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(2 * MiB);
  await store.ingest(blob.digest, blob.data.length, streamOf(blob.data));
  const again = streamOf(blob.data);
  await store.ingest(blob.digest, blob.data.length, again);
  t.true(again.readableEnded);
  t.true(store.get(blob.digest)?.complete);
});

test('ingest of an empty blob completes it', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(0);
  await store.ingest(blob.digest, 0, streamOf(blob.data));
  t.true(store.get(blob.digest)?.complete);
  t.is((await readAll(store.openReader(blob.digest))).length, 0);
});
