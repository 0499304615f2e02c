import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { silentLogger } from '@shoal/core';
import { PieceStore } from '../src/index.js';
import { MiB, blobFile, makeBlob, partialFile, piece, streamOf, tempDir } from './fixtures.js';

test('open drops records whose files are gone and removes files without a record', async (t) => {
  const dir = await tempDir(t);
  const kept = makeBlob(2 * MiB);
  const lostPartial = makeBlob(2 * MiB + 1);
  const lostBlob = makeBlob(2 * MiB + 2);
  const orphan = makeBlob(10);

  const first = await PieceStore.open({ log: silentLogger() }, { dir });
  await first.begin(kept.digest, kept.data.length);
  await first.setPieceHashes(kept.digest, kept.pieceSha256);
  await first.writePiece(kept.digest, 0, streamOf(piece(kept, 0)));
  await first.begin(lostPartial.digest, lostPartial.data.length);
  await first.ingest(lostBlob.digest, lostBlob.data.length, streamOf(lostBlob.data));
  await first.close();

  await rm(partialFile(dir, lostPartial.digest));
  await rm(blobFile(dir, lostBlob.digest));
  // Crash leftovers: files nobody recorded.
  await writeFile(partialFile(dir, orphan.digest), orphan.data);
  await writeFile(blobFile(dir, orphan.digest), orphan.data);

  const store = await PieceStore.open({ log: silentLogger() }, { dir });
  t.teardown(() => store.close());
  t.deepEqual(store.list().map((e) => e.digest), [kept.digest]);
  t.is(store.get(kept.digest)?.verifiedCount, 1);
  t.deepEqual(await readdir(join(dir, 'partial', 'sha256')), [kept.digest.slice(7)]);
  t.deepEqual(await readdir(join(dir, 'blobs', 'sha256')), []);
});
