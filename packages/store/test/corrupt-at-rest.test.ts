import { open } from 'node:fs/promises';
import test from 'ava';
import { CorruptAtRestError, type Digest } from '@shoal/core';
import { MiB, blobFile, exists, makeBlob, openStore, partialFile, piece, readChunksInto, streamOf } from './fixtures.js';

// A blob whose file changed on disk after it was verified (16 bytes flipped) was
// read back and served as it was: the wrong bytes under the right digest. Every
// read for sending now hashes each piece as it comes off the disk and hands its
// bytes out only once the piece matches its recorded hash; a piece that does not
// drops the blob.

async function flip16(path: string, offset: number): Promise<void> {
  const fh = await open(path, 'r+');
  const bytes = Buffer.alloc(16);
  await fh.read(bytes, 0, 16, offset);
  for (let i = 0; i < 16; i++) bytes[i] = (bytes[i] ?? 0) ^ 0xff;
  await fh.write(bytes, 0, 16, offset);
  await fh.close();
}

test('a complete blob changed on disk is never read out: the reader stops before the bad piece and the blob is dropped', async (t) => {
  const { store, dir } = await openStore(t);
  const blob = makeBlob(4 * MiB + 321);
  await store.ingest(blob.digest, blob.data.length, streamOf(blob.data));
  await flip16(blobFile(dir, blob.digest), 2 * MiB + 1000);
  const dropped: Array<{ digest: Digest; reason: Error }> = [];
  store.on('discarded', (digest, reason) => dropped.push({ digest, reason }));

  const reader = store.openReader(blob.digest);
  const got: Buffer[] = [];
  const error = await t.throwsAsync(
    readChunksInto(reader, got),
    { instanceOf: CorruptAtRestError },
  );
  reader.close();
  t.is(error?.code, 'SHOAL_CORRUPT_AT_REST');
  const sent = Buffer.concat(got);
  t.is(sent.length, 2 * MiB, 'the two sound pieces before the bad one were read, nothing of it');
  t.true(sent.equals(blob.data.subarray(0, 2 * MiB)));

  t.is(store.get(blob.digest), undefined, 'the blob is dropped');
  t.false(await exists(blobFile(dir, blob.digest)));
  t.is(dropped.length, 1, "'discarded' tells the node (which tells the supernode)");
  t.is(dropped[0]?.digest, blob.digest);
  t.true(dropped[0]?.reason instanceof CorruptAtRestError);
});

test('a range starting inside a bad piece, and a bad piece of a partial blob, give no byte', async (t) => {
  const { store, dir } = await openStore(t);
  const whole = makeBlob(3 * MiB);
  await store.ingest(whole.digest, whole.data.length, streamOf(whole.data));
  await flip16(blobFile(dir, whole.digest), MiB + 10);
  // The flipped bytes come before the range, in the same piece: the piece is checked whole.
  const ranged = store.openReader(whole.digest, { start: MiB + 100, end: MiB + 200 });
  await t.throwsAsync(ranged.read(Buffer.alloc(1000)), { instanceOf: CorruptAtRestError });
  ranged.close();
  t.is(store.get(whole.digest), undefined);

  const partial = makeBlob(3 * MiB);
  await store.begin(partial.digest, partial.data.length);
  await store.setPieceHashes(partial.digest, partial.pieceSha256);
  await store.writePiece(partial.digest, 1, streamOf(piece(partial, 1)));
  await flip16(partialFile(dir, partial.digest), MiB + MiB / 2);
  const reader = store.openPieceReader(partial.digest, 1);
  await t.throwsAsync(reader.read(Buffer.alloc(MiB)), { instanceOf: CorruptAtRestError });
  reader.close();
  t.is(store.get(partial.digest), undefined);
  t.false(await exists(partialFile(dir, partial.digest)));
});

test('sound pieces read as before, and a blob dropped for corruption can be stored again', async (t) => {
  const { store, dir } = await openStore(t);
  const blob = makeBlob(2 * MiB + 5);
  await store.ingest(blob.digest, blob.data.length, streamOf(blob.data));
  await flip16(blobFile(dir, blob.digest), 5);
  await t.throwsAsync(store.openReader(blob.digest).read(Buffer.alloc(MiB)), { instanceOf: CorruptAtRestError });
  await store.ingest(blob.digest, blob.data.length, streamOf(blob.data));
  const reader = store.openReader(blob.digest);
  const into = Buffer.alloc(blob.data.length + 10);
  let at = 0;
  for (let count = 1; count > 0; at += count) count = await reader.read(into.subarray(at));
  reader.close();
  t.true(into.subarray(0, at).equals(blob.data));
});
