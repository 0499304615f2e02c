import { PassThrough } from 'node:stream';
import test from 'ava';
import { DEFAULT_PARTIAL_IDLE_MS } from '../src/index.js';
import { MiB, makeBlob, manualClock, openStoreWith, piece, streamOf, readAll } from './fixtures.js';

test('eviction skips blobs being read, written or waited for, and partial blobs touched recently', async (t) => {
  const clock = manualClock();
  // Six blobs of about 1 MiB fit under the high watermark (6.5 MiB); the seventh
  // passes it, and eviction then wants everything else gone (low: 1 MiB).
  const { store } = await openStoreWith(t, { quotaBytes: 10 * MiB, highWatermark: 0.65, lowWatermark: 0.1 }, { clock });
  const reading = makeBlob(MiB);
  const writing = makeBlob(MiB + 1);
  const waitedFor = makeBlob(MiB + 2);
  const recent = makeBlob(MiB + 3);
  const abandoned = makeBlob(MiB + 4);
  const idle = makeBlob(MiB + 5);
  const next = makeBlob(MiB + 6);

  await store.ingest(idle.digest, idle.data.length, streamOf(idle.data));
  await store.ingest(reading.digest, reading.data.length, streamOf(reading.data));
  const stream = store.openReader(reading.digest);
  await store.begin(abandoned.digest, abandoned.data.length);
  clock.advance(DEFAULT_PARTIAL_IDLE_MS);

  await store.begin(writing.digest, writing.data.length);
  await store.setPieceHashes(writing.digest, writing.pieceSha256);
  const source = new PassThrough();
  source.write(piece(writing, 0).subarray(0, 1000));
  const write = store.writePiece(writing.digest, 0, source);
  await store.begin(waitedFor.digest, waitedFor.data.length);
  const wait = store.waitForPiece(waitedFor.digest, 0);
  clock.advance(DEFAULT_PARTIAL_IDLE_MS);
  await store.begin(recent.digest, recent.data.length);
  clock.advance(DEFAULT_PARTIAL_IDLE_MS - 1);

  const discarded: string[] = [];
  store.on('discarded', (digest) => discarded.push(digest));
  await store.begin(next.digest, next.data.length);
  t.deepEqual(discarded, [idle.digest, abandoned.digest]);
  t.deepEqual(
    store.list().map((x) => x.digest).sort(),
    [reading.digest, writing.digest, waitedFor.digest, recent.digest, next.digest].sort(),
  );

  // Once they are done, they may go too.
  t.true((await readAll(stream)).equals(reading.data));
  source.end(piece(writing, 0).subarray(1000));
  await write;
  await store.setPieceHashes(waitedFor.digest, waitedFor.pieceSha256);
  await store.writePiece(waitedFor.digest, 0, streamOf(piece(waitedFor, 0)));
  await wait;
  clock.advance(DEFAULT_PARTIAL_IDLE_MS);
  discarded.length = 0;
  const last = makeBlob(2 * MiB);
  await store.begin(last.digest, last.data.length);
  // Least recently used first: reading (last read at the start), recent, then the three touched last.
  t.deepEqual(discarded.slice(0, 2), [reading.digest, recent.digest]);
  t.is(discarded.length, 5);
  t.deepEqual(store.usage(), { bytes: 2 * MiB, quotaBytes: 10 * MiB, blobs: 1 });
});
