import { open, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { StoreFullError, silentLogger } from '@shoal/core';
import { PieceStore } from '../src/index.js';
import { MiB, blobFile, exists, makeBlob, partialFile, piece, streamOf, readAll } from './fixtures.js';
import { mountSmallFs } from './small-fs.js';

const test = anyTest as TestFn;
// ENOSPC comes from a real filesystem of 24 MiB; without the right to mount one, the test is skipped.
const probe = await mountSmallFs(1);
await probe?.unmount();
const realFsTest = probe === undefined ? test.skip : test;

/** Fills the filesystem of `dir` with a file that is not the store's, leaving about `leaveBytes` free. */
async function fill(path: string, leaveBytes: number): Promise<void> {
  const s = await statfs(join(path, '..'));
  const free = s.bfree * s.bsize;
  const fh = await open(path, 'w');
  try {
    const chunk = Buffer.alloc(MiB, 1);
    for (let left = free - leaveBytes; left > 0; left -= chunk.length) await fh.write(chunk, 0, Math.min(chunk.length, left));
  } finally {
    await fh.close();
  }
}

realFsTest('a full disk keeps nothing partial, evicts idle blobs, and fails with StoreFullError', async (t) => {
  const smallFs = await mountSmallFs(24);
  if (smallFs === undefined) throw new Error('could not mount a small filesystem');
  t.teardown(() => smallFs.unmount());
  t.log(`ENOSPC from ${smallFs.kind}`);
  const dir = join(smallFs.dir, 'store');
  const store = await PieceStore.open({ log: silentLogger() }, { dir });
  t.teardown(() => store.close());
  const discarded: string[] = [];
  store.on('discarded', (digest) => discarded.push(digest));

  const old = makeBlob(3 * MiB);
  await store.ingest(old.digest, old.data.length, streamOf(old.data));
  const filler = join(smallFs.dir, 'not-shoal');
  await fill(filler, 2 * MiB);

  // Back-to-source ingest runs out of space: the blob goes, the idle one is evicted to make room.
  const big = makeBlob(6 * MiB);
  const error = await t.throwsAsync(store.ingest(big.digest, big.data.length, streamOf(big.data)), { instanceOf: StoreFullError });
  t.is(error?.code, 'SHOAL_STORE_FULL');
  t.is(error?.statusCode, 507);
  t.log(`ingest: ${error?.message ?? ''}`);
  t.is(store.get(big.digest), undefined);
  t.false(await exists(partialFile(dir, big.digest)));
  t.is(store.get(old.digest), undefined);
  t.false(await exists(blobFile(dir, old.digest)));
  t.deepEqual(discarded.sort(), [big.digest, old.digest].sort());

  // Pieces from peers run out of space too (5 MiB free now, 8 MiB of pieces).
  discarded.length = 0;
  const pieces = makeBlob(8 * MiB);
  await store.begin(pieces.digest, pieces.data.length);
  await store.setPieceHashes(pieces.digest, pieces.pieceSha256);
  const failure = await (async () => {
    for (let index = 0; index < pieces.layout.pieceCount; index++) {
      try {
        await store.writePiece(pieces.digest, index, streamOf(piece(pieces, index)));
      } catch (err) {
        return err;
      }
    }
    return undefined;
  })();
  t.true(failure instanceof StoreFullError, String(failure));
  t.log(`writePiece: ${String(failure)}`);
  t.is(store.get(pieces.digest), undefined);
  t.false(await exists(partialFile(dir, pieces.digest)));
  t.deepEqual(discarded, [pieces.digest]);
  t.deepEqual(store.usage(), { bytes: 0, quotaBytes: undefined, blobs: 0 });

  // With room again, the same store (and its db) works as before.
  await rm(filler);
  await store.ingest(big.digest, big.data.length, streamOf(big.data));
  t.true((await readAll(store.openReader(big.digest))).equals(big.data));
});
