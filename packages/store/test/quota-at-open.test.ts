import test from 'ava';
import { silentLogger } from '@shoal/core';
import { PieceStore } from '../src/index.js';
import { MiB, makeBlob, manualClock, openStoreWith, streamOf, tempDir } from './fixtures.js';

test('a store opened with a quota below what it holds evicts at open, oldest first', async (t) => {
  const dir = await tempDir(t);
  const clock = manualClock();
  const blobs = [makeBlob(2 * MiB), makeBlob(2 * MiB), makeBlob(2 * MiB)];
  const first = await PieceStore.open({ log: silentLogger(), clock }, { dir });
  for (const blob of blobs) {
    clock.advance(1_000);
    await first.ingest(blob.digest, blob.data.length, streamOf(blob.data));
  }
  await first.close();

  // High 4.5 MiB, low 3.75 MiB: only the newest blob stays.
  const { store } = await openStoreWith(t, { dir, quotaBytes: 5 * MiB }, { clock });
  t.deepEqual(store.list().map((b) => b.digest), [blobs[2]?.digest]);
  t.deepEqual(store.usage(), { bytes: 2 * MiB, quotaBytes: 5 * MiB, blobs: 1 });
});
