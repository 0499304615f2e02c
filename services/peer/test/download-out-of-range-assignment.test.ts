import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { pieceLayout, pieceSpan, silentLogger, type Digest, type ScheduleRequest, type ScheduleResponse } from '@shoal/core';
import { PieceStore } from '@shoal/store';
import { Download, PieceClient, SupernodeClient, type PieceResponse } from '../src/index.js';

const MiB = 1024 * 1024;

// Before: a schedule answer naming a piece outside the blob's layout (a
// supernode that holds the blob with another size) made fetchPiece throw
// outside its try, and the promise the download loop had voided rejected
// unhandled: the node agent went down.

/** A scripted supernode (no HTTP): its first answer also names a piece past the end of the blob. */
class OutOfRangeSupernode extends SupernodeClient {
  private readonly assigned = new Set<number>();
  private first = true;

  constructor(private readonly blob: { data: Buffer; hashes: string[] }) {
    super({ log: silentLogger() }, { supernodeUrls: ['http://scripted.invalid'], token: undefined });
  }

  override async schedule(_url: string, _digest: Digest, request: ScheduleRequest): Promise<ScheduleResponse> {
    const assignments: ScheduleResponse['assignments'] = [];
    if (this.first) {
      this.first = false;
      assignments.push({ piece: this.blob.hashes.length, sha256: 'a'.repeat(64), candidates: [{ kind: 'seed' }] });
    }
    for (let piece = 0; piece < this.blob.hashes.length && assignments.length < request.limit; piece++) {
      if (this.assigned.has(piece)) continue;
      this.assigned.add(piece);
      assignments.push({ piece, candidates: [{ kind: 'seed' }] });
    }
    return { assignments, seedComplete: false };
  }

  override async fetchPiece(_url: string, _digest: Digest, index: number): Promise<PieceResponse> {
    const span = pieceSpan(pieceLayout(this.blob.data.length), index);
    return { sha256: this.blob.hashes[index] as string, body: Readable.from([this.blob.data.subarray(span.offset, span.offset + span.length)]) };
  }
}

test('a schedule answer naming a piece outside the blob is skipped, and the download completes', async (t) => {
  const data = randomBytes(2 * MiB + 5);
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
  const layout = pieceLayout(data.length);
  const hashes = Array.from({ length: layout.pieceCount }, (_, i) => {
    const span = pieceSpan(layout, i);
    return createHash('sha256').update(data.subarray(span.offset, span.offset + span.length)).digest('hex');
  });
  const dir = await mkdtemp(join(tmpdir(), 'shoal-out-of-range-'));
  const store = await PieceStore.open({ log: silentLogger() }, { dir });
  t.teardown(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  await store.begin(digest, data.length);
  const run = new Download(
    { log: silentLogger(), store, supernodes: new OutOfRangeSupernode({ data, hashes }), pieces: new PieceClient({ token: undefined }) },
    {
      info: { digest, sizeBytes: data.length, pieceSizeBytes: layout.pieceSizeBytes, pieceCount: layout.pieceCount, pieceSha256: hashes.map(() => null), complete: false },
      supernodeUrl: 'http://scripted.invalid',
      peerId: 'out-of-range-node',
      advertiseUrl: 'http://127.0.0.1:1',
      pieceWindow: 8,
      onDone: () => undefined,
    },
  );
  await run.done;
  t.true(store.get(digest)?.complete);
  // An unhandled rejection from the bad assignment fails the file.
  await sleep(100);
});
