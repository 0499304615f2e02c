import test from 'ava';
import { BlobUnknownError, silentLogger, type Clock } from '@shoal/core';
import { PieceStore } from '../src/index.js';
import { MiB, blobFile, exists, makeBlob, streamOf, tempDir, readAll } from './fixtures.js';

test('list reports every blob with its last access; reads move it; delete removes it', async (t) => {
  const dir = await tempDir(t);
  let nowMs = 1_000;
  const clock: Clock = { now: () => nowMs };
  const store = await PieceStore.open({ log: silentLogger(), clock }, { dir });
  t.teardown(() => store.close());
  const a = makeBlob(2 * MiB);
  const b = makeBlob(MiB + 1);
  await store.ingest(a.digest, a.data.length, streamOf(a.data));
  nowMs = 2_000;
  await store.begin(b.digest, b.data.length);

  nowMs = 5_000;
  await readAll(store.openReader(a.digest));
  const byDigest = new Map(store.list().map((e) => [e.digest, e]));
  t.deepEqual(byDigest.get(a.digest), { digest: a.digest, sizeBytes: a.data.length, complete: true, lastAccessMs: 5_000 });
  t.deepEqual(byDigest.get(b.digest), { digest: b.digest, sizeBytes: b.data.length, complete: false, lastAccessMs: 2_000 });

  const discarded: string[] = [];
  store.on('discarded', (digest) => discarded.push(digest));
  await store.delete(a.digest);
  t.is(store.get(a.digest), undefined);
  t.false(await exists(blobFile(dir, a.digest)));
  t.deepEqual(discarded, [a.digest]);
  t.throws(() => store.openReader(a.digest), { instanceOf: BlobUnknownError });
  t.deepEqual(store.list().map((e) => e.digest), [b.digest]);
  // Deleting what is not there is not an error.
  await store.delete(a.digest);
});

test('last access survives a restart', async (t) => {
  const dir = await tempDir(t);
  let nowMs = 1_000;
  const clock: Clock = { now: () => nowMs };
  const a = makeBlob(MiB);
  const first = await PieceStore.open({ log: silentLogger(), clock }, { dir });
  await first.ingest(a.digest, a.data.length, streamOf(a.data));
  nowMs = 9_000;
  await readAll(first.openReader(a.digest));
  await first.close();
  const store = await PieceStore.open({ log: silentLogger(), clock }, { dir });
  t.teardown(() => store.close());
  t.is(store.list()[0]?.lastAccessMs, 9_000);
});
