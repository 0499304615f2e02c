/**
 * Preheat into nodes, the peer's side: a `prefetch` fills the store through
 * the swarm path a pull takes (the supernode's task, schedule and seed) with
 * no reader at all, so the fill is pinned: the orphan timer (ORPHAN_GRACE_MS)
 * that cancels a download nobody reads must not cancel it. One `prefetched`
 * answer per blob; a blob already complete is answered at once without asking
 * the supernode; a blob the store has no room for is answered failed with the
 * store's reason. Real PieceStore in a temp dir, a SCRIPTED supernode client
 * (no HTTP) whose seed holds its pieces back.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { pieceLayout, pieceSpan, silentLogger, type Digest, type PrefetchBlob, type ScheduleRequest, type ScheduleResponse, type TaskInfo, type TaskRequest } from '@shoal/core';
import { PieceStore } from '@shoal/store';
import { ORPHAN_GRACE_MS, Peer, PieceClient, Prefetcher, SupernodeClient, type PieceResponse, type PrefetchedMessage } from '../src/index.js';

const MiB = 1024 * 1024;

interface Blob {
  digest: Digest;
  data: Buffer;
  hashes: string[];
}

function makeBlob(size: number): Blob {
  const data = randomBytes(size);
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
  const layout = pieceLayout(data.length);
  const hashes = Array.from({ length: layout.pieceCount }, (_, i) => {
    const span = pieceSpan(layout, i);
    return createHash('sha256').update(data.subarray(span.offset, span.offset + span.length)).digest('hex');
  });
  return { digest, data, hashes };
}

/** The seed holds every piece back until `releaseAtMs`; tasks, schedules and pieces are counted. */
class ScriptedSupernode extends SupernodeClient {
  readonly tasks: Array<{ request: TaskRequest; authorization: string | undefined }> = [];
  private readonly assigned = new Map<Digest, Set<number>>();

  constructor(
    private readonly blobs: Map<Digest, Blob>,
    private readonly releaseAtMs: number,
  ) {
    super({ log: silentLogger() }, { supernodeUrls: ['http://scripted.invalid'], token: undefined });
  }

  override async createTask(request: TaskRequest, authorization: string | undefined): Promise<{ info: TaskInfo; supernodeUrl: string }> {
    this.tasks.push({ request, authorization });
    return { info: this.info(request.digest as Digest), supernodeUrl: 'http://scripted.invalid' };
  }

  override async schedule(_url: string, digest: Digest, request: ScheduleRequest): Promise<ScheduleResponse> {
    const blob = this.blobs.get(digest) as Blob;
    let assigned = this.assigned.get(digest);
    if (assigned === undefined) this.assigned.set(digest, (assigned = new Set()));
    const assignments: ScheduleResponse['assignments'] = [];
    for (let piece = 0; piece < blob.hashes.length && assignments.length < request.limit; piece++) {
      if (assigned.has(piece)) continue;
      assigned.add(piece);
      assignments.push({ piece, sha256: blob.hashes[piece] as string, candidates: [{ kind: 'seed' }] });
    }
    return { assignments, seedComplete: true };
  }

  override async taskInfo(_url: string, digest: Digest): Promise<TaskInfo> {
    return this.info(digest);
  }

  override async fetchPiece(_url: string, digest: Digest, index: number, signal?: AbortSignal): Promise<PieceResponse> {
    const wait = this.releaseAtMs - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    signal?.throwIfAborted();
    const blob = this.blobs.get(digest) as Blob;
    const span = pieceSpan(pieceLayout(blob.data.length), index);
    return { sha256: blob.hashes[index] as string, body: Readable.from([blob.data.subarray(span.offset, span.offset + span.length)]) };
  }

  private info(digest: Digest): TaskInfo {
    const blob = this.blobs.get(digest) as Blob;
    const layout = pieceLayout(blob.data.length);
    return { digest, sizeBytes: layout.blobSizeBytes, pieceSizeBytes: layout.pieceSizeBytes, pieceCount: layout.pieceCount, pieceSha256: blob.hashes, complete: true };
  }
}

async function setUp(t: ExecutionContext, blobs: Blob[], options: { holdMs: number; quotaBytes?: number }) {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-prefetch-'));
  const log = silentLogger();
  const store = await PieceStore.open({ log }, { dir, quotaBytes: options.quotaBytes });
  const supernodes = new ScriptedSupernode(new Map(blobs.map((b) => [b.digest, b])), Date.now() + options.holdMs);
  const pieces = new PieceClient({ token: undefined });
  const peer = new Peer({ log, store, supernodes, pieces }, { peerId: 'peer-a', advertiseUrl: 'http://127.0.0.1:1' });
  const prefetcher = new Prefetcher({ log, target: peer }, { concurrency: 2 });
  t.teardown(async () => {
    prefetcher.close();
    peer.close();
    await pieces.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const answers: PrefetchedMessage[] = [];
  const prefetch = (job: string, list: Blob[]): void =>
    prefetcher.handle(
      { type: 'prefetch', job, blobs: list.map((b): PrefetchBlob => ({ digest: b.digest, sizeBytes: b.data.length, registry: 'registry.test', repository: 'test/app' })) },
      (answer) => answers.push(answer),
    );
  const answered = async (count: number, timeoutMs: number): Promise<void> => {
    const until = Date.now() + timeoutMs;
    while (answers.length < count) {
      if (Date.now() > until) throw new Error(`${answers.length} of ${count} answers in ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  return { store, supernodes, prefetcher, answers, prefetch, answered, peer };
}

const JOB = '0b9f6a1e-4d3c-4f5e-8a7b-1c2d3e4f5a6b';

test('a prefetch is pinned: a pull that joins its fill and gives up does not leave it to the orphan timer', async (t) => {
  const blob = makeBlob(2 * MiB + 5);
  // The seed answers only after the orphan grace has passed: an unpinned fill would be cancelled by then.
  const { store, supernodes, answers, prefetch, answered, peer } = await setUp(t, [blob], { holdMs: ORPHAN_GRACE_MS + 800 });
  prefetch(JOB, [blob]);
  await new Promise((resolve) => setTimeout(resolve, 50));
  // containerd asks for the blob, then goes away (kubelet cancelled the pull): its reader detaches from the fill.
  const pull = peer.openBlob({ digest: blob.digest, registry: 'registry.test', repository: 'test/app', sizeBytes: blob.data.length }, undefined, { signal: AbortSignal.timeout(100) });
  await t.throwsAsync(pull, { any: true });
  await answered(1, ORPHAN_GRACE_MS + 10_000);
  t.deepEqual(answers, [{ type: 'prefetched', job: JOB, digest: blob.digest, ok: true }]);
  t.true(store.get(blob.digest)?.complete, 'complete in the store');
  t.is(supernodes.tasks.length, 1);
  t.is(supernodes.tasks[0]?.authorization, undefined, 'no registry credential rides with a prefetch');
});

test('one answer per blob, a few at a time; a blob already complete is answered without asking the supernode', async (t) => {
  const blobs = [makeBlob(300 * 1024), makeBlob(1 * MiB + 1), makeBlob(64 * 1024)];
  const { store, supernodes, prefetcher, answers, prefetch, answered } = await setUp(t, blobs, { holdMs: 300 });
  prefetch(JOB, blobs);
  t.is(prefetcher.pending, 3);
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.is(supernodes.tasks.length, 2, 'two fills at once (concurrency 2), the third waits');
  await answered(3, 10_000);
  t.deepEqual(answers.map((a) => a.ok), [true, true, true]);
  t.deepEqual(answers.map((a) => a.digest).sort(), blobs.map((b) => b.digest).sort());
  for (const b of blobs) t.true(store.get(b.digest)?.complete);

  prefetch(JOB, [blobs[0] as Blob]);
  await answered(4, 5_000);
  t.deepEqual(answers[3], { type: 'prefetched', job: JOB, digest: blobs[0]?.digest, ok: true });
  t.is(supernodes.tasks.length, 3, 'no task for a blob already complete');
});

test('a blob the store has no room for is answered failed with the reason', async (t) => {
  const blob = makeBlob(2 * MiB);
  const { store, answers, prefetch, answered } = await setUp(t, [blob], { holdMs: 0, quotaBytes: 1 * MiB });
  prefetch(JOB, [blob]);
  await answered(1, 5_000);
  t.is(answers[0]?.ok, false);
  t.regex(answers[0]?.error ?? '', /^sha256:[a-f0-9]{64} \(2097152 bytes\) is larger than the cache's high watermark/);
  t.falsy(store.get(blob.digest)?.complete);
});

test('beyond the queue bound a blob is answered failed at once', async (t) => {
  const blobs = [makeBlob(1024), makeBlob(2048), makeBlob(4096)];
  const dir = await mkdtemp(join(tmpdir(), 'shoal-prefetch-q-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const never = { prefetch: () => new Promise<'fetched'>(() => undefined) };
  const prefetcher = new Prefetcher({ log: silentLogger(), target: never }, { concurrency: 1, maxQueued: 2 });
  t.teardown(() => prefetcher.close());
  const answers: PrefetchedMessage[] = [];
  prefetcher.handle({ type: 'prefetch', job: JOB, blobs: blobs.map((b) => ({ digest: b.digest, sizeBytes: b.data.length, registry: 'r.test', repository: 'a' })) }, (a) => answers.push(a));
  t.is(prefetcher.pending, 2);
  t.is(answers.length, 1);
  t.is(answers[0]?.digest, blobs[2]?.digest);
  t.false(answers[0]?.ok);
  t.regex(answers[0]?.error ?? '', /^busy: 2 blobs are already being prefetched/);
});
