/**
 * Run by crash-recovery.test.ts with `node crash-child.js DIR` and killed with
 * SIGKILL at a random moment: opens the store in DIR and keeps it busy with
 * every kind of write (ingests, pieces in any order, wrong pieces, deletes,
 * evictions under a small quota) until killed. Prints "ready" once open.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { silentLogger, type Digest } from '@shoal/core';
import { PieceStore } from '../src/index.js';
import { MiB, makeBlob, piece, shuffled, streamOf, readAll } from './fixtures.js';

const dir = process.argv[2];
if (dir === undefined) throw new Error('usage: crash-child DIR');
const store = await PieceStore.open({ log: silentLogger() }, { dir, quotaBytes: 24 * MiB, partialIdleMs: 200 });
process.stdout.write('ready\n');

async function step(): Promise<void> {
  const op = Math.random();
  const blob = makeBlob(randomInt(1, 5 * MiB));
  if (op < 0.35) {
    await store.ingest(blob.digest, blob.data.length, streamOf(blob.data, randomInt(1024, 256 * 1024)));
  } else if (op < 0.75) {
    await store.begin(blob.digest, blob.data.length);
    await store.setPieceHashes(blob.digest, blob.pieceSha256);
    // Some pieces only: partial blobs stay behind too.
    const order = shuffled(Array.from({ length: blob.layout.pieceCount }, (_, i) => i)).slice(0, randomInt(1, blob.layout.pieceCount + 1));
    await Promise.all(order.map((index) => store.writePiece(blob.digest, index, streamOf(piece(blob, index)))));
  } else if (op < 0.85) {
    // Wrong bytes for a piece: they land on disk but must never be served.
    await store.begin(blob.digest, blob.data.length);
    await store.setPieceHashes(blob.digest, blob.pieceSha256);
    const wrong = randomBytes(piece(blob, 0).length);
    await store.writePiece(blob.digest, 0, streamOf(wrong)).catch(() => undefined);
  } else if (op < 0.93) {
    const held = store.list();
    const victim = held[randomInt(0, Math.max(1, held.length))]?.digest;
    if (victim !== undefined) await store.delete(victim);
  } else {
    const complete = store.list().filter((b) => b.complete);
    const pick: Digest | undefined = complete[randomInt(0, Math.max(1, complete.length))]?.digest;
    if (pick !== undefined) await readAll(store.openReader(pick));
  }
}

async function worker(): Promise<void> {
  for (;;) {
    // Evictions and deletes by the other worker make some operations fail: that is part of the load.
    await step().catch(() => undefined);
  }
}

await Promise.all([worker(), worker()]);
