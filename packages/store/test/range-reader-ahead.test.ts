import { open, type FileHandle } from 'node:fs/promises';
import test from 'ava';
import { pieceSpan } from '@shoal/core';
import { RangeReader, type RangeReaderSource } from '../src/range-reader.js';
import { MiB, blobFile, makeBlob, openStore, readAll, readChunksInto, streamOf, type Blob } from './fixtures.js';

// While the caller sends one piece, a reader reads the next one from disk, so that
// the disk read does not wait behind the hash and the socket writes. The bytes read
// ahead are still hashed and matched before any of them is handed out.

interface Spied {
  source: RangeReaderSource;
  /** File offsets of every read the reader asked for, in order. */
  reads: number[];
  closed: () => boolean;
}

/** A reader's source over a stored blob's file, recording every read. `readable` says which pieces may be read. */
async function spiedSource(t: Parameters<typeof openStore>[0], blob: Blob, readable: (index: number) => boolean = () => true, hashes = blob.pieceSha256): Promise<Spied> {
  const { store, dir } = await openStore(t);
  await store.ingest(blob.digest, blob.data.length, streamOf(blob.data));
  const reads: number[] = [];
  let closed = false;
  const source: RangeReaderSource = {
    digest: blob.digest,
    layout: blob.layout,
    open: async () => {
      const handle = await open(blobFile(dir, blob.digest), 'r');
      const spy = {
        read: (buffer: Buffer, offset: number, length: number, position: number) => {
          reads.push(position);
          return handle.read(buffer, offset, length, position);
        },
        close: async () => {
          closed = true;
          await handle.close();
        },
      };
      return spy as unknown as FileHandle;
    },
    readablePiece: (index) => {
      if (!readable(index)) throw new Error(`piece ${index} may not be read`);
      return hashes[index] as string;
    },
    fresh: () => undefined,
    unpin: () => undefined,
    corrupt: async (index, actual) => new Error(`piece ${index} hashes to ${actual}`),
    release: () => undefined,
  };
  return { source, reads, closed: () => closed };
}

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));

test('while the caller holds a piece, the next one is read from disk; every piece is read once and the bytes are the blob', async (t) => {
  const blob = makeBlob(4 * MiB + 99);
  const { source, reads } = await spiedSource(t, blob);
  const reader = new RangeReader(source, 0, blob.data.length);
  const first = Buffer.alloc(1024);
  t.is(await reader.read(first), 1024);
  await settle();
  const piece1 = pieceSpan(blob.layout, 1).offset;
  t.true(reads.includes(piece1), `piece 1 read ahead while piece 0 is held (reads at ${reads.join(', ')})`);
  t.false(reads.includes(pieceSpan(blob.layout, 2).offset), 'one piece ahead, not two');

  const rest = await readAll(reader);
  t.true(Buffer.concat([first, rest]).equals(blob.data));
  const starts = Array.from({ length: blob.layout.pieceCount }, (_, i) => pieceSpan(blob.layout, i).offset);
  for (const start of starts) t.is(reads.filter((r) => r === start).length, 1, `piece at ${start} read once`);
});

test('a reader reads ahead neither past its range nor into a piece it may not read', async (t) => {
  const blob = makeBlob(4 * MiB);
  const { source, reads } = await spiedSource(t, blob, (index) => index !== 2);
  const ranged = new RangeReader(source, 0, MiB + 10);
  t.is((await readAll(ranged)).length, MiB + 10);
  await settle();
  t.false(reads.some((r) => r >= 2 * MiB), `nothing past the range's last piece (reads at ${reads.join(', ')})`);

  reads.length = 0;
  const whole = new RangeReader(source, MiB, 4 * MiB);
  const into = Buffer.alloc(256 * 1024);
  t.is(await whole.read(into), into.length);
  await settle();
  t.deepEqual(reads, [MiB], 'piece 2 may not be read: no read ahead of it');
  whole.close();
});

test('a piece still in memory is not read ahead from disk', async (t) => {
  const blob = makeBlob(3 * MiB);
  const { source, reads } = await spiedSource(t, blob);
  const reader = new RangeReader({ ...source, inMemory: (index) => index === 1 }, 0, blob.data.length);
  t.is(await reader.read(Buffer.alloc(1024)), 1024);
  await settle();
  t.deepEqual(reads, [0], 'piece 1 is in memory: no disk read ahead of it');
  reader.close();
});

test('bytes read ahead are matched against their hash before any is handed out', async (t) => {
  const blob = makeBlob(3 * MiB);
  const wrong = [...blob.pieceSha256];
  wrong[1] = '0'.repeat(64);
  const { source } = await spiedSource(t, blob, () => true, wrong);
  const reader = new RangeReader(source, 0, blob.data.length);
  const got: Buffer[] = [];
  await t.throwsAsync(
    readChunksInto(reader, got),
    { message: /piece 1 hashes to/ },
  );
  reader.close();
  t.true(Buffer.concat(got).equals(blob.data.subarray(0, MiB)), 'piece 0 only');
});

test('a reader closed while it reads ahead closes its file and fails further reads', async (t) => {
  const blob = makeBlob(3 * MiB);
  const { source, closed } = await spiedSource(t, blob);
  const reader = new RangeReader(source, 0, blob.data.length);
  t.is(await reader.read(Buffer.alloc(10)), 10);
  reader.close();
  await settle();
  t.true(closed(), 'the file is closed once the read ahead settled');
  await t.throwsAsync(reader.read(Buffer.alloc(10)), { message: /closed/ });
});
