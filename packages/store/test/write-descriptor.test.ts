import { readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { MiB, makeBlob, openStore, piece, streamOf } from './fixtures.js';

/**
 * Descriptors of this process open for writing on the store's blob files
 * (partial or complete), not its db. Read-only ones are left out: the
 * whole-digest check reads pieces back in the background.
 */
async function openUnder(dir: string): Promise<number> {
  const prefixes = [join(dir, 'partial'), join(dir, 'blobs')];
  let n = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (!prefixes.some((p) => target.startsWith(p))) continue;
    const info = await readFile(`/proc/self/fdinfo/${fd}`, 'utf8').catch(() => '');
    // flags are octal; the low two bits are the access mode (0: read-only).
    const flags = /^flags:\s+([0-7]+)$/m.exec(info)?.[1];
    if (flags !== undefined && (parseInt(flags, 8) & 3) !== 0) n++;
  }
  return n;
}

test('pieces share one write descriptor per blob, closed when the blob completes or is discarded', async (t) => {
  const { store, dir } = await openStore(t);
  const done = makeBlob(4 * MiB);
  await store.begin(done.digest, done.data.length);
  await store.setPieceHashes(done.digest, done.pieceSha256);
  await Promise.all([0, 1, 2].map((i) => store.writePiece(done.digest, i, streamOf(piece(done, i)))));
  t.is(await openUnder(dir), 1, 'one descriptor for three pieces written at once');
  await store.writePiece(done.digest, 3, streamOf(piece(done, 3)));
  await store.waitForComplete(done.digest);
  t.is(await openUnder(dir), 0, 'closed on completion');

  const dropped = makeBlob(2 * MiB);
  await store.begin(dropped.digest, dropped.data.length);
  await store.setPieceHashes(dropped.digest, dropped.pieceSha256);
  await store.writePiece(dropped.digest, 0, streamOf(piece(dropped, 0)));
  t.is(await openUnder(dir), 1);
  await store.delete(dropped.digest);
  t.is(await openUnder(dir), 0, 'closed on discard');
});

test('a blob left partial does not keep its write descriptor once nobody writes it', async (t) => {
  const { store, dir } = await openStore(t);
  const blob = makeBlob(3 * MiB);
  await store.begin(blob.digest, blob.data.length);
  await store.setPieceHashes(blob.digest, blob.pieceSha256);
  await store.writePiece(blob.digest, 0, streamOf(piece(blob, 0)));
  t.is(await openUnder(dir), 1, 'kept open between pieces');
  await sleep(1_500);
  t.is(await openUnder(dir), 0, 'closed after a second without a writer');
  // Writing again reopens it, and the blob completes as usual.
  for (const i of [1, 2]) await store.writePiece(blob.digest, i, streamOf(piece(blob, i)));
  await store.waitForComplete(blob.digest);
  t.is(await openUnder(dir), 0);
});
