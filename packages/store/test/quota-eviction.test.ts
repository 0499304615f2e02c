import test from 'ava';
import { BlobUnknownError } from '@shoal/core';
import { MiB, blobFile, exists, makeBlob, manualClock, openStoreWith, recordingLogger, streamOf, readAll } from './fixtures.js';

test('past the high watermark, beginning a blob evicts least recently used blobs down to the low watermark', async (t) => {
  const clock = manualClock();
  const { log, lines } = recordingLogger();
  // High watermark 9 MiB, low 7.5 MiB.
  const { store, dir } = await openStoreWith(t, { quotaBytes: 10 * MiB }, { clock, log });
  const [a, b, c, d, e] = [makeBlob(2 * MiB), makeBlob(2 * MiB), makeBlob(2 * MiB), makeBlob(2 * MiB), makeBlob(2 * MiB)];
  if (a === undefined || b === undefined || c === undefined || d === undefined || e === undefined) throw new Error('unreachable');
  for (const blob of [a, b, c, d]) {
    clock.advance(1_000);
    await store.ingest(blob.digest, blob.data.length, streamOf(blob.data));
  }
  t.deepEqual(store.usage(), { bytes: 8 * MiB, quotaBytes: 10 * MiB, blobs: 4 });

  // A read makes `a` the most recently used.
  clock.advance(1_000);
  await readAll(store.openReader(a.digest));
  const discarded: string[] = [];
  store.on('discarded', (digest, reason) => {
    discarded.push(digest);
    t.true(reason instanceof BlobUnknownError);
  });

  clock.advance(60_000);
  // 8 + 2 = 10 MiB > 9: evict b (→ 8 MiB), c (→ 6 MiB ≤ 7.5).
  await store.begin(e.digest, e.data.length);
  t.deepEqual(discarded, [b.digest, c.digest]);
  t.deepEqual(store.usage(), { bytes: 6 * MiB, quotaBytes: 10 * MiB, blobs: 3 });
  t.deepEqual(store.list().map((x) => x.digest).sort(), [a.digest, d.digest, e.digest].sort());
  t.false(await exists(blobFile(dir, b.digest)));
  t.false(await exists(blobFile(dir, c.digest)));
  t.true((await readAll(store.openReader(a.digest))).equals(a.data));

  const evicted = lines.filter((l) => l.msg === 'blob evicted');
  t.deepEqual(
    evicted.map((l) => [l.fields.digest, l.fields.sizeBytes, l.fields.ageMs]),
    [
      [b.digest, 2 * MiB, 63_000],
      [c.digest, 2 * MiB, 62_000],
    ],
  );
  // One line per evicted blob, not a second 'blob discarded'.
  t.is(lines.filter((l) => l.msg === 'blob discarded').length, 0);
});

test('under the high watermark nothing is evicted', async (t) => {
  const { store } = await openStoreWith(t, { quotaBytes: 10 * MiB, highWatermark: 0.95, lowWatermark: 0.5 });
  const blobs = [makeBlob(3 * MiB), makeBlob(3 * MiB), makeBlob(3 * MiB)];
  const discarded: string[] = [];
  store.on('discarded', (digest) => discarded.push(digest));
  for (const blob of blobs) await store.ingest(blob.digest, blob.data.length, streamOf(blob.data));
  t.deepEqual(discarded, []);
  t.is(store.usage().bytes, 9 * MiB);
});
