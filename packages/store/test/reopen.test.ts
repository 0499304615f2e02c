import { readFile } from 'node:fs/promises';
import test from 'ava';
import { silentLogger } from '@shoal/core';
import { PieceStore } from '../src/index.js';
import { MiB, blobFile, makeBlob, piece, streamOf, tempDir, readAll } from './fixtures.js';

test('reopening keeps complete blobs and the verified pieces of partial ones', async (t) => {
  const dir = await tempDir(t);
  const complete = makeBlob(2 * MiB + 1);
  const partial = makeBlob(4 * MiB + 2);

  const first = await PieceStore.open({ log: silentLogger() }, { dir });
  await first.ingest(complete.digest, complete.data.length, streamOf(complete.data));
  await first.begin(partial.digest, partial.data.length);
  await first.setPieceHashes(partial.digest, partial.pieceSha256);
  await first.writePiece(partial.digest, 0, streamOf(piece(partial, 0)));
  await first.writePiece(partial.digest, 2, streamOf(piece(partial, 2)));
  await first.close();

  const store = await PieceStore.open({ log: silentLogger() }, { dir });
  t.teardown(() => store.close());
  t.true(store.get(complete.digest)?.complete);
  t.true((await readAll(store.openReader(complete.digest))).equals(complete.data));

  const record = store.get(partial.digest);
  t.false(record?.complete);
  t.is(record?.verifiedCount, 2);
  t.deepEqual(record?.pieceSha256, partial.pieceSha256);
  t.true(store.hasPiece(partial.digest, 0));
  t.false(store.hasPiece(partial.digest, 1));
  t.true(store.hasPiece(partial.digest, 2));
  t.true((await readAll(store.openPieceReader(partial.digest, 2))).equals(piece(partial, 2)));
  t.deepEqual(
    store.list().map((e) => [e.digest, e.complete]).sort(),
    [
      [complete.digest, true],
      [partial.digest, false],
    ].sort(),
  );

  // The running digest is memory only: finishing after a restart re-hashes the verified prefix.
  for (const i of [4, 3, 1]) await store.writePiece(partial.digest, i, streamOf(piece(partial, i)));
  await store.waitForComplete(partial.digest);
  t.true((await readFile(blobFile(dir, partial.digest))).equals(partial.data));
});
