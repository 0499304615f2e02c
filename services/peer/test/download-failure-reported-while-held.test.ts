// A download's schedule call may be held at the supernode (a long-poll) while one of its
// pieces fails at a parent. The failure is reported at once, in a call of its own that asks
// for nothing, so the scheduler may hand the piece out again now, not when the hold ends.
// And a call's body leaves out its empty lists: every call crosses the supernode's link.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { pieceLayout, pieceSpan, silentLogger, type Digest, type PieceLayout, type ScheduleRequest, type ScheduleResponse } from '@shoal/core';
import { PieceStore } from '@shoal/store';
import { Download, PieceClient, SCHEDULE_WAIT_MS, SupernodeClient, type PieceResponse } from '../src/index.js';

const MiB = 1024 * 1024;
/** How long the broken parent keeps a piece request before it drops the connection: past the download's first nap, so a call is held by then. */
const BROKEN_PARENT_DROP_MS = 300;
const SCRIPTED_URL = 'http://scripted.invalid';
const ADVERTISE_URL = 'http://127.0.0.1:1';

/**
 * A scripted supernode (no HTTP) that holds schedule calls as the real one does:
 * its first answer sends piece 0 to a broken peer; after that it has nothing to
 * assign until it hears of that failure, and holds every call that asks for
 * pieces for its whole `waitMs` or until a failure report comes. Only then does
 * it hand out every piece from the seed.
 */
class HoldingSupernode extends SupernodeClient {
  readonly requests: Array<{ atMs: number; request: ScheduleRequest }> = [];
  private failureHeard = false;
  /** Piece 0 was handed out again after its failure was heard. */
  private reassigned = false;
  private readonly held = new Set<() => void>();
  private readonly assigned = new Set<number>();
  private readonly startedAt = performance.now();

  constructor(
    private readonly blob: { data: Buffer; hashes: string[] },
    private readonly brokenParentUrl: string,
  ) {
    super({ log: silentLogger() }, { supernodeUrls: [SCRIPTED_URL], token: undefined });
  }

  override async schedule(_url: string, _digest: Digest, request: ScheduleRequest): Promise<ScheduleResponse> {
    this.requests.push({ atMs: performance.now() - this.startedAt, request });
    if ((request.failures ?? []).some((f) => f.parentId === 'broken' && f.piece === 0)) {
      this.failureHeard = true;
      for (const wake of this.held) wake();
    }
    if (this.requests.length === 1) {
      this.assigned.add(0);
      return { assignments: [{ piece: 0, sha256: this.blob.hashes[0] as string, candidates: [{ kind: 'peer', peerId: 'broken', url: this.brokenParentUrl }] }], seedComplete: false };
    }
    if (request.limit === 0) return { assignments: [], seedComplete: false };
    if (!this.failureHeard) {
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.held.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, request.waitMs ?? 0);
        this.held.add(wake);
      });
    }
    if (!this.failureHeard) return { assignments: [], seedComplete: false };
    if (!this.reassigned) {
      // Piece 0's transfer failed: it may be handed out again, once.
      this.reassigned = true;
      this.assigned.delete(0);
    }
    const assignments: ScheduleResponse['assignments'] = [];
    for (let piece = 0; piece < this.blob.hashes.length && assignments.length < request.limit; piece++) {
      if (this.assigned.has(piece)) continue;
      this.assigned.add(piece);
      assignments.push({ piece, sha256: this.blob.hashes[piece] as string, candidates: [{ kind: 'seed' }] });
    }
    return { assignments, seedComplete: false };
  }

  override async fetchPiece(_url: string, _digest: Digest, index: number): Promise<PieceResponse> {
    const span = pieceSpan(pieceLayout(this.blob.data.length), index);
    return { sha256: this.blob.hashes[index] as string, body: Readable.from([this.blob.data.subarray(span.offset, span.offset + span.length)]) };
  }
}

/** A blob of `sizeBytes` random bytes: its digest, layout and piece hashes. */
function blobOf(sizeBytes: number): { data: Buffer; digest: Digest; layout: PieceLayout; hashes: string[] } {
  const data = randomBytes(sizeBytes);
  const layout = pieceLayout(data.length);
  const hashes = Array.from({ length: layout.pieceCount }, (_, i) => {
    const span = pieceSpan(layout, i);
    return createHash('sha256').update(data.subarray(span.offset, span.offset + span.length)).digest('hex');
  });
  return { data, digest: `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest, layout, hashes };
}

/** Downloads `blob` into a real store in a temp dir, asking `supernode`; resolves with the store once the download is done. */
async function download(t: ExecutionContext, blob: ReturnType<typeof blobOf>, supernode: SupernodeClient, peerId: string): Promise<PieceStore> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-held-call-'));
  const store = await PieceStore.open({ log: silentLogger() }, { dir });
  t.teardown(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  await store.begin(blob.digest, blob.data.length);
  const { layout } = blob;
  const run = new Download(
    { log: silentLogger(), store, supernodes: supernode, pieces: new PieceClient({ token: undefined }) },
    {
      info: { digest: blob.digest, sizeBytes: blob.data.length, pieceSizeBytes: layout.pieceSizeBytes, pieceCount: layout.pieceCount, pieceSha256: blob.hashes, complete: true },
      supernodeUrl: SCRIPTED_URL,
      peerId,
      advertiseUrl: ADVERTISE_URL,
      pieceWindow: 8,
      onDone: () => undefined,
    },
  );
  await run.done;
  return store;
}

test('a parent that fails while the schedule call is held is reported at once, in a call that asks for nothing', async (t) => {
  // A parent that takes the piece request and drops the connection a little later.
  const broken = createServer((socket) => {
    socket.on('error', () => undefined);
    setTimeout(() => socket.destroy(), BROKEN_PARENT_DROP_MS);
  });
  broken.listen(0, '127.0.0.1');
  await once(broken, 'listening');
  t.teardown(() => broken.close());
  const blob = blobOf(3 * MiB);
  const supernode = new HoldingSupernode(blob, `http://127.0.0.1:${(broken.address() as AddressInfo).port}`);
  const startedAt = performance.now();
  const store = await download(t, blob, supernode, 'held-failure-node');
  const tookMs = performance.now() - startedAt;
  t.true(store.get(blob.digest)?.complete);
  // The report came while a call was held: a call of its own, limit 0, not held.
  const report = supernode.requests.find(({ request }) => (request.failures ?? []).length > 0);
  t.truthy(report, 'the failure was reported');
  t.is(report?.request.limit, 0);
  t.is(report?.request.waitMs, undefined);
  t.deepEqual(report?.request.failures?.map(({ parentId, piece }) => ({ parentId, piece })), [{ parentId: 'broken', piece: 0 }]);
  // A call asking for pieces was out (held) when it came.
  t.true(supernode.requests.some(({ atMs, request }) => request.limit > 0 && request.waitMs === SCHEDULE_WAIT_MS && atMs < (report?.atMs ?? 0)));
  // Without the report the held call would have run its whole wait before the piece could be assigned again.
  t.true(tookMs < BROKEN_PARENT_DROP_MS + SCHEDULE_WAIT_MS / 2, `the download took ${Math.round(tookMs)} ms`);
});

test('a schedule call leaves out empty lists', async (t) => {
  const blob = blobOf(MiB);
  const requests: ScheduleRequest[] = [];
  class OneShot extends SupernodeClient {
    override async schedule(_url: string, _digest: Digest, request: ScheduleRequest): Promise<ScheduleResponse> {
      requests.push(request);
      return { assignments: request.limit > 0 && requests.length === 1 ? [{ piece: 0, sha256: blob.hashes[0] as string, candidates: [{ kind: 'seed' }] }] : [], seedComplete: false };
    }

    override async fetchPiece(): Promise<PieceResponse> {
      return { sha256: blob.hashes[0] as string, body: Readable.from([blob.data]) };
    }
  }
  await download(t, blob, new OneShot({ log: silentLogger() }, { supernodeUrls: [SCRIPTED_URL], token: undefined }), 'lean-call-node');
  t.deepEqual(Object.keys(requests[0] ?? {}).sort(), ['advertiseUrl', 'limit', 'peerId', 'waitMs']);
  // The final announce carries the piece it verified, and asks for nothing.
  t.deepEqual(requests.at(-1), { peerId: 'lean-call-node', advertiseUrl: ADVERTISE_URL, limit: 0, have: [0] });
});
