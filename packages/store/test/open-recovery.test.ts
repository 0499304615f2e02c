import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { Level } from 'level';
import { silentLogger, type Digest } from '@shoal/core';
import { PieceStore } from '../src/index.js';
import { MiB, blobFile, makeBlob, partialFile, streamOf, tempDir, readAll } from './fixtures.js';

/** Rewrites a stored record as a crash would have left it. */
async function markIncomplete(dir: string, digest: Digest): Promise<void> {
  const db = new Level<string, Record<string, unknown>>(join(dir, 'db'), { valueEncoding: 'json' });
  await db.open();
  const record = await db.get(digest);
  if (record === undefined) throw new Error('no record');
  await db.put(digest, { ...record, complete: false });
  await db.close();
}

async function ingestAndClose(dir: string, data: Buffer, digest: Digest): Promise<void> {
  const store = await PieceStore.open({ log: silentLogger() }, { dir });
  await store.ingest(digest, data.length, streamOf(data));
  await store.close();
}

test('a blob renamed into blobs/ before its record said complete is found complete at open', async (t) => {
  const dir = await tempDir(t);
  const blob = makeBlob(2 * MiB + 9);
  await ingestAndClose(dir, blob.data, blob.digest);
  await markIncomplete(dir, blob.digest);

  const store = await PieceStore.open({ log: silentLogger() }, { dir });
  t.teardown(() => store.close());
  t.true(store.get(blob.digest)?.complete);
  t.true((await readAll(store.openReader(blob.digest))).equals(blob.data));
});

test('a blob with every piece verified but not yet renamed completes after open', async (t) => {
  const dir = await tempDir(t);
  const blob = makeBlob(3 * MiB + 9);
  await ingestAndClose(dir, blob.data, blob.digest);
  await markIncomplete(dir, blob.digest);
  await rename(blobFile(dir, blob.digest), partialFile(dir, blob.digest));

  const store = await PieceStore.open({ log: silentLogger() }, { dir });
  t.teardown(() => store.close());
  await store.waitForComplete(blob.digest);
  t.true((await readFile(blobFile(dir, blob.digest))).equals(blob.data));
});
