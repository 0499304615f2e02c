import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { silentLogger } from '@shoal/core';
import { PieceStore } from '../src/index.js';
import { MiB, blobFile, makeBlob, streamOf, tempDir, readAll } from './fixtures.js';

test("verifyOnOpen 'complete' re-hashes complete blobs at open and drops those that changed", async (t) => {
  const dir = await tempDir(t);
  const rotten = makeBlob(2 * MiB + 1);
  const sound = makeBlob(MiB + 1);
  const first = await PieceStore.open({ log: silentLogger() }, { dir });
  for (const blob of [rotten, sound]) await first.ingest(blob.digest, blob.data.length, streamOf(blob.data));
  await first.close();
  // Same size, one byte flipped: only a re-hash sees it.
  const fh = await open(blobFile(dir, rotten.digest), 'r+');
  await fh.write(Buffer.from([(rotten.data[MiB] ?? 0) ^ 0xff]), 0, 1, MiB);
  await fh.close();

  // By default open trusts the files it verified before (reading everything is slow).
  const trusting = await PieceStore.open({ log: silentLogger() }, { dir });
  t.true(trusting.get(rotten.digest)?.complete);
  await trusting.close();

  const store = await PieceStore.open({ log: silentLogger() }, { dir, verifyOnOpen: 'complete' });
  t.teardown(() => store.close());
  t.is(store.get(rotten.digest), undefined);
  t.deepEqual(await readdir(join(dir, 'blobs', 'sha256')), [sound.digest.slice(7)]);
  t.true((await readAll(store.openReader(sound.digest))).equals(sound.data));
});
