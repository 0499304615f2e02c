import test from 'ava';
import { StoreFullError } from '@shoal/core';
import { MiB, exists, makeBlob, openStoreWith, partialFile, streamOf, readAll } from './fixtures.js';

test('with the quota held by blobs in use, begin throws StoreFullError and keeps nothing', async (t) => {
  const { store, dir } = await openStoreWith(t, { quotaBytes: 4 * MiB });
  const a = makeBlob(3 * MiB);
  const b = makeBlob(MiB + 1);
  await store.ingest(a.digest, a.data.length, streamOf(a.data));
  const serving = store.openReader(a.digest);

  const error = await t.throwsAsync(store.begin(b.digest, b.data.length), { instanceOf: StoreFullError });
  t.is(error?.code, 'SHOAL_STORE_FULL');
  t.is(error?.statusCode, 507);
  await t.throwsAsync(store.ingest(b.digest, b.data.length, streamOf(b.data)), { instanceOf: StoreFullError });
  t.is(store.get(b.digest), undefined);
  t.false(await exists(partialFile(dir, b.digest)));
  t.deepEqual(store.usage(), { bytes: 3 * MiB, quotaBytes: 4 * MiB, blobs: 1 });

  // Served to the end, then it may make room.
  t.true((await readAll(serving)).equals(a.data));
  await new Promise((resolve) => setImmediate(resolve));
  await store.ingest(b.digest, b.data.length, streamOf(b.data));
  t.is(store.get(a.digest), undefined);
  t.true(store.get(b.digest)?.complete);
});

test('a blob larger than the high watermark is refused outright, without evicting anything', async (t) => {
  const { store } = await openStoreWith(t, { quotaBytes: 10 * MiB });
  const small = makeBlob(MiB);
  await store.ingest(small.digest, small.data.length, streamOf(small.data));
  const discarded: string[] = [];
  store.on('discarded', (digest) => discarded.push(digest));
  await t.throwsAsync(store.begin(makeBlob(0).digest, 9 * MiB + 1), { instanceOf: StoreFullError });
  t.deepEqual(discarded, []);
  t.true(store.get(small.digest)?.complete);
});
