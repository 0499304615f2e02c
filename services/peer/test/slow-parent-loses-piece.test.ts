// Regression: a parent that sends 1 byte per second kept its pieces. Each byte
// reset the "no byte for 2 s" stall timer, so the child never gave the piece to
// anyone else; the pull took 30 s and ended at the registry. Now a piece body
// is judged by its rate: under the floor, the parent loses the piece, is
// reported ('stalled'), and the next candidate serves it within seconds.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import test from 'ava';
import { pieceLayout, pieceSpan, silentLogger, type Digest, type ScheduleRequest, type ScheduleResponse } from '@shoal/core';
import { PieceStore } from '@shoal/store';
import { Download, PieceClient, SupernodeClient, type PieceResponse } from '../src/index.js';

const MiB = 1024 * 1024;

/** A scripted supernode (no HTTP): every piece goes to the trickling parent first, the seed second. */
class ScriptedSupernode extends SupernodeClient {
  readonly failures: NonNullable<ScheduleRequest['failures']> = [];
  private readonly assigned = new Set<number>();

  constructor(private readonly blob: { data: Buffer; hashes: string[] }, private readonly parentUrl: string) {
    super({ log: silentLogger() }, { supernodeUrls: ['http://scripted.invalid'], token: undefined });
  }

  override async schedule(_url: string, _digest: Digest, request: ScheduleRequest): Promise<ScheduleResponse> {
    this.failures.push(...(request.failures ?? []));
    const assignments: ScheduleResponse['assignments'] = [];
    for (let piece = 0; piece < this.blob.hashes.length && assignments.length < request.limit; piece++) {
      if (this.assigned.has(piece)) continue;
      this.assigned.add(piece);
      assignments.push({ piece, sha256: this.blob.hashes[piece] as string, candidates: [{ kind: 'peer', peerId: 'trickler', url: this.parentUrl }, { kind: 'seed' }] });
    }
    return { assignments, seedComplete: true };
  }

  override async fetchPiece(_url: string, _digest: Digest, index: number): Promise<PieceResponse> {
    const span = pieceSpan(pieceLayout(this.blob.data.length), index);
    return { sha256: this.blob.hashes[index] as string, body: Readable.from([this.blob.data.subarray(span.offset, span.offset + span.length)]) };
  }
}

/** A parent that answers 200 at once and then sends one byte a second. */
async function tricklingParent(t: import('ava').ExecutionContext): Promise<string> {
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(MiB) });
    const timer = setInterval(() => res.write(Buffer.from([0])), 1_000);
    timers.add(timer);
    res.on('close', () => {
      clearInterval(timer);
      timers.delete(timer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    for (const timer of timers) clearInterval(timer);
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('a parent sending 1 byte/s loses its pieces within seconds and is reported', async (t) => {
  const data = randomBytes(4 * MiB);
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
  const layout = pieceLayout(data.length);
  const hashes = Array.from({ length: layout.pieceCount }, (_, i) => {
    const span = pieceSpan(layout, i);
    return createHash('sha256').update(data.subarray(span.offset, span.offset + span.length)).digest('hex');
  });
  const dir = await mkdtemp(join(tmpdir(), 'shoal-slow-parent-'));
  const store = await PieceStore.open({ log: silentLogger() }, { dir });
  const pieces = new PieceClient({ token: undefined });
  t.teardown(async () => {
    await pieces.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const supernode = new ScriptedSupernode({ data, hashes }, await tricklingParent(t));
  await store.begin(digest, data.length);
  await store.setPieceHashes(digest, hashes, { certified: true });
  const startedAt = performance.now();
  const run = new Download(
    { log: silentLogger(), store, supernodes: supernode, pieces },
    {
      info: { digest, sizeBytes: data.length, pieceSizeBytes: layout.pieceSizeBytes, pieceCount: layout.pieceCount, pieceSha256: hashes, complete: true },
      supernodeUrl: 'http://scripted.invalid',
      peerId: 'child',
      advertiseUrl: 'http://127.0.0.1:1',
      pieceWindow: 8,
      onDone: () => undefined,
    },
  );
  const outcome = await Promise.race([run.done.then(() => 'done' as const), new Promise<'slow'>((resolve) => setTimeout(() => resolve('slow'), 15_000).unref())]);
  if (outcome === 'slow') run.cancel(new Error('test over'));
  const seconds = (performance.now() - startedAt) / 1000;
  t.is(outcome, 'done', `the download finished (it took ${seconds.toFixed(1)} s)`);
  t.true(seconds < 8, `a 1 byte/s parent cost ${seconds.toFixed(1)} s, not a few`);
  t.true(store.get(digest)?.complete);
  t.true(
    supernode.failures.some((f) => f.parentId === 'trickler' && f.kind === 'stalled'),
    `the trickling parent was reported as stalled: ${JSON.stringify(supernode.failures)}`,
  );
});
