import { appendFile, readdir, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { silentLogger } from '@shoal/core';
import { PieceStore } from '../src/index.js';
import { MiB, blobFile, makeBlob, partialFile, piece, streamOf, tempDir } from './fixtures.js';

test('open drops a record whose file does not have the blob size, and its file', async (t) => {
  const dir = await tempDir(t);
  const shortPartial = makeBlob(3 * MiB);
  const shortBlob = makeBlob(2 * MiB + 5);
  const longBlob = makeBlob(2 * MiB + 7);
  const kept = makeBlob(MiB + 3);

  const first = await PieceStore.open({ log: silentLogger() }, { dir });
  await first.begin(shortPartial.digest, shortPartial.data.length);
  await first.setPieceHashes(shortPartial.digest, shortPartial.pieceSha256);
  await first.writePiece(shortPartial.digest, 0, streamOf(piece(shortPartial, 0)));
  await first.writePiece(shortPartial.digest, 2, streamOf(piece(shortPartial, 2)));
  for (const blob of [shortBlob, longBlob, kept]) await first.ingest(blob.digest, blob.data.length, streamOf(blob.data));
  await first.close();

  // The record claims pieces 0 and 2, but the file ends inside piece 1.
  await truncate(partialFile(dir, shortPartial.digest), MiB + 10);
  await truncate(blobFile(dir, shortBlob.digest), 2 * MiB);
  await appendFile(blobFile(dir, longBlob.digest), 'x');

  const store = await PieceStore.open({ log: silentLogger() }, { dir });
  t.teardown(() => store.close());
  t.deepEqual(store.list().map((b) => b.digest), [kept.digest]);
  t.is(store.get(shortPartial.digest), undefined);
  t.false(store.hasPiece(shortPartial.digest, 0));
  t.deepEqual(await readdir(join(dir, 'partial', 'sha256')), []);
  t.deepEqual(await readdir(join(dir, 'blobs', 'sha256')), [kept.digest.slice(7)]);
});
