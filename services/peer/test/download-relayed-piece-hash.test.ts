/**
 * A peer passes on a piece it is still receiving, and the supernode does not
 * know the piece's hash yet: the assignment comes without one. The download
 * checks the peer's bytes against the hash it asks the supernode for (never
 * the peer's), blames the peer for bytes that do not match it, and when the
 * supernode cannot say, holds that against the supernode, not the peer.
 * The supernode and the peer are scripted (no HTTP): FAKE parents, real store.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import test from 'ava';
import { pieceLayout, pieceSpan, silentLogger, SwarmUnavailableError, type Digest, type ScheduleRequest, type ScheduleResponse } from '@shoal/core';
import { PieceStore } from '@shoal/store';
import { Download, PieceClient, SupernodeClient, type PieceResponse } from '../src/index.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test("a relayed piece is checked against the supernode's hash; a missing hash is the supernode's failure, bad bytes the peer's", async (t) => {
  const data = randomBytes(3 * MiB);
  const digest = `sha256:${sha(data)}` as Digest;
  const layout = pieceLayout(data.length);
  const piece = (i: number): Buffer => {
    const span = pieceSpan(layout, i);
    return data.subarray(span.offset, span.offset + span.length);
  };
  const hashes = [0, 1, 2].map((i) => sha(piece(i)));
  const failures: NonNullable<ScheduleRequest['failures']> = [];
  let hashAsks = 0;

  /** Hands each piece out once from the peer "relay" without a hash, then again from the seed; the hash of piece 1 cannot be had. */
  class ScriptedSupernode extends SupernodeClient {
    private readonly handedOut = new Map<number, number>();
    override async schedule(_url: string, _digest: Digest, request: ScheduleRequest): Promise<ScheduleResponse> {
      failures.push(...(request.failures ?? []));
      const assignments: ScheduleResponse['assignments'] = [];
      for (let i = 0; i < 3 && assignments.length < request.limit; i++) {
        const times = this.handedOut.get(i) ?? 0;
        if (times >= 2 || (times === 1 && !failures.some((f) => f.piece === i))) continue;
        this.handedOut.set(i, times + 1);
        assignments.push(times === 0 ? { piece: i, candidates: [{ kind: 'peer', peerId: 'relay', url: 'http://relay.invalid' }] } : { piece: i, sha256: hashes[i] as string, candidates: [{ kind: 'seed' }] });
      }
      return { assignments, seedComplete: false };
    }
    override async pieceSha256(_url: string, _digest: Digest, index: number): Promise<string> {
      hashAsks++;
      await new Promise((resolve) => setTimeout(resolve, 20));
      if (index === 1) throw new SwarmUnavailableError('scripted: the supernode never verified piece 1');
      return hashes[index] as string;
    }
    override async fetchPiece(_url: string, _digest: Digest, index: number): Promise<PieceResponse> {
      return { sha256: hashes[index] as string, body: Readable.from([piece(index)]) };
    }
  }
  /** The relay sends the right bytes for pieces 0 and 1 and wrong ones for piece 2. */
  class ScriptedRelay extends PieceClient {
    override async fetchPiece(_url: string, _digest: Digest, index: number): Promise<Readable> {
      const bytes = Buffer.from(piece(index));
      if (index === 2) bytes[0] = (bytes[0] as number) ^ 1;
      return Readable.from([bytes]);
    }
  }

  const dir = await mkdtemp(join(tmpdir(), 'shoal-relayed-hash-'));
  const store = await PieceStore.open({ log: silentLogger() }, { dir });
  t.teardown(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  await store.begin(digest, data.length);
  const origins: Array<string | undefined> = [];
  const run = new Download(
    { log: silentLogger(), store, supernodes: new ScriptedSupernode({ log: silentLogger() }, { supernodeUrls: ['http://scripted.invalid'], token: undefined }), pieces: new ScriptedRelay({ token: undefined }) },
    {
      info: { digest, sizeBytes: data.length, pieceSizeBytes: layout.pieceSizeBytes, pieceCount: layout.pieceCount, pieceSha256: [null, null, null], complete: false },
      supernodeUrl: 'http://scripted.invalid',
      peerId: 'child',
      advertiseUrl: 'http://127.0.0.1:1',
      pieceWindow: 8,
      onDone: () => undefined,
    },
  );
  store.on('piece', (_d, index) => (origins[index] = run.originOf(index)));
  await run.done;

  t.true(store.get(digest)?.complete, 'the blob completed, its digest checked');
  t.is(hashAsks, 3, 'one hash lookup per relayed piece');
  t.is(origins[0], 'peer', "piece 0: the relay's bytes matched the supernode's hash");
  t.deepEqual(
    failures.map((f) => `${f.piece}:${f.parentId}:${f.kind}`).sort(),
    ['1:seed:unreachable', '2:relay:bad-piece'],
    'no hash for piece 1 is held against the supernode; bad bytes for piece 2 against the relay',
  );
  t.is(origins[1], 'supernode');
  t.is(origins[2], 'supernode');
});
