import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import test from 'ava';
import { pieceLayout, pieceSpan, silentLogger, type Digest, type ScheduleRequest, type ScheduleResponse, type TaskInfo } from '@shoal/core';
import { PieceStore } from '@shoal/store';
import { Download, PieceClient, SupernodeClient, type PieceResponse } from '../src/index.js';

const MiB = 1024 * 1024;

/**
 * A scripted supernode (no HTTP): it hands every piece to the node from the
 * seed, says the seed is still fetching on every schedule call of the
 * download loop, and answers the final announce (limit 0) with
 * `finalSeedComplete`. That is the moment a real supernode finishes just
 * before the node does, which cannot be timed with real processes. Its task
 * info says `complete` unless `taskInfoComplete` is false: a supernode whose
 * copy matched its digest but is not durable yet (datasync and rename pending).
 */
class ScriptedSupernode extends SupernodeClient {
  readonly requests: ScheduleRequest[] = [];
  taskInfoCalls = 0;
  private readonly assigned = new Set<number>();

  constructor(
    private readonly blob: { digest: Digest; data: Buffer; hashes: string[] },
    private readonly finalSeedComplete: boolean,
    private readonly taskInfoComplete = true,
  ) {
    super({ log: silentLogger() }, { supernodeUrls: ['http://scripted.invalid'], token: undefined });
  }

  override async schedule(_url: string, _digest: Digest, request: ScheduleRequest): Promise<ScheduleResponse> {
    this.requests.push(request);
    if (request.limit === 0) return { assignments: [], seedComplete: this.finalSeedComplete };
    const assignments: ScheduleResponse['assignments'] = [];
    for (let piece = 0; piece < this.blob.hashes.length && assignments.length < request.limit; piece++) {
      if (this.assigned.has(piece)) continue;
      this.assigned.add(piece);
      assignments.push({ piece, candidates: [{ kind: 'seed' }] });
    }
    return { assignments, seedComplete: false };
  }

  override async taskInfo(): Promise<TaskInfo> {
    this.taskInfoCalls++;
    const layout = pieceLayout(this.blob.data.length);
    return { digest: this.blob.digest, sizeBytes: layout.blobSizeBytes, pieceSizeBytes: layout.pieceSizeBytes, pieceCount: layout.pieceCount, pieceSha256: this.blob.hashes, complete: this.taskInfoComplete };
  }

  override async fetchPiece(_url: string, _digest: Digest, index: number): Promise<PieceResponse> {
    const span = pieceSpan(pieceLayout(this.blob.data.length), index);
    return { sha256: this.blob.hashes[index] as string, body: Readable.from([this.blob.data.subarray(span.offset, span.offset + span.length)]) };
  }
}

async function download(t: import('ava').ExecutionContext, finalSeedComplete: boolean, taskInfoComplete = true) {
  const data = randomBytes(4 * MiB);
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
  const layout = pieceLayout(data.length);
  const hashes = Array.from({ length: layout.pieceCount }, (_, i) => {
    const span = pieceSpan(layout, i);
    return createHash('sha256').update(data.subarray(span.offset, span.offset + span.length)).digest('hex');
  });
  const dir = await mkdtemp(join(tmpdir(), 'shoal-late-cert-'));
  const store = await PieceStore.open({ log: silentLogger() }, { dir });
  t.teardown(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const certifiedLists: Array<'certified' | 'expected' | 'plain'> = [];
  const setPieceHashes = store.setPieceHashes.bind(store);
  store.setPieceHashes = async (d, list, options) => {
    certifiedLists.push(options?.certified === true ? 'certified' : options?.certificationExpected === true ? 'expected' : 'plain');
    return setPieceHashes(d, list, options);
  };
  const supernode = new ScriptedSupernode({ digest, data, hashes }, finalSeedComplete, taskInfoComplete);
  // Where each piece came from, as the download tells it the moment the piece is readable
  // (what the proxy's X-Shoal-Source is decided on), before writePiece has returned.
  const originsWhenReadable: Array<string | undefined> = [];
  store.on('piece', (d, index) => {
    if (d === digest) originsWhenReadable[index] = run.originOf(index);
  });
  // As the peer begins a download the supernode is still fetching: no hashes yet, not
  // complete, and its certification expected (the store holds back its whole-blob pass).
  await store.begin(digest, data.length);
  await store.setPieceHashes(digest, hashes.map(() => null), { certificationExpected: true });
  const run = new Download(
    { log: silentLogger(), store, supernodes: supernode, pieces: new PieceClient({ token: undefined }) },
    {
      info: { digest, sizeBytes: data.length, pieceSizeBytes: layout.pieceSizeBytes, pieceCount: layout.pieceCount, pieceSha256: hashes.map(() => null), complete: false },
      supernodeUrl: 'http://scripted.invalid',
      peerId: 'late-cert-node',
      advertiseUrl: 'http://127.0.0.1:1',
      pieceWindow: 8,
      onDone: () => undefined,
    },
  );
  await run.done;
  t.true(store.get(digest)?.complete);
  const last = supernode.requests.at(-1);
  t.is(last?.limit, 0, 'the download ended with its final announce');
  t.true((last?.have ?? []).length > 0);
  return { supernode, certifiedLists, originsWhenReadable };
}

test('the final announce says the seed is complete: the node takes its certified hashes', async (t) => {
  const { supernode, certifiedLists } = await download(t, true);
  t.is(supernode.taskInfoCalls, 1);
  t.deepEqual(certifiedLists, ['expected', 'certified']);
});

test('the seed matched the digest but is not durable yet: its full piece list is certified all the same', async (t) => {
  const { supernode, certifiedLists } = await download(t, true, false);
  t.is(supernode.taskInfoCalls, 1);
  t.deepEqual(certifiedLists, ['expected', 'certified']);
});

test('the final announce says the seed is still fetching: the node checks the whole blob itself', async (t) => {
  // The blob completed (download() checks it): the store's pass, held back for a
  // certification that did not come, ran once every piece was here.
  const { supernode, certifiedLists } = await download(t, false);
  t.is(supernode.taskInfoCalls, 0);
  t.deepEqual(certifiedLists, ['expected']);
});

test('a piece is labelled with its origin as soon as it is readable', async (t) => {
  const { originsWhenReadable } = await download(t, false);
  t.deepEqual(originsWhenReadable, ['supernode', 'supernode', 'supernode', 'supernode']);
});
