/**
 * Regression: the seed holds a request for the piece arriving now for as long as its
 * blob's bytes keep coming (piece-hold.ts), but the child's frontier claim on that
 * piece ended after 30 s (FRONTIER_TTL_MS). A second child could then claim the same
 * piece while the seed still held the first one's request, and the seed sent it twice.
 */
import test, { type ExecutionContext } from 'ava';
import { PIECE_WAIT_MS, silentLogger, type Digest } from '@shoal/core';
import { PieceStore } from '@shoal/store';
import { PeerTable } from '../src/peer-table.js';
import { Scheduler } from '../src/scheduler/index.js';
import { Swarm } from '../src/swarm.js';
import { tempStore } from './helpers/temp-store.js';

const PIECE = 1024 * 1024;
const DIGEST = `sha256:${'a'.repeat(64)}` as Digest;

/** A real store with these blobs begun (their fetches from the registry under way) and no piece in yet. */
async function storeFetching(t: ExecutionContext, blobs: Array<[Digest, number]>): Promise<PieceStore> {
  const store = await tempStore(t, 'swarm');
  for (const [digest, sizeBytes] of blobs) await store.begin(digest, sizeBytes);
  return store;
}

test('the claim on the piece arriving now lasts while the fetch moves, and ends once it goes quiet', async (t) => {
  // The blob's fetch from the registry is under way and no piece has landed yet.
  const store = await storeFetching(t, [[DIGEST, 16 * PIECE]]);
  const clock = { nowMs: 1_000_000, now(): number { return this.nowMs; } };
  let quietMs: number | undefined = 0;
  const scheduler = new Scheduler({ clock });
  for (const peerId of ['a', 'b', 'c', 'd']) scheduler.addPeer({ peerId, url: `http://${peerId}` });
  const swarm = new Swarm({ log: silentLogger(), store, scheduler, peers: new PeerTable(), clock, fetchQuietMs: () => quietMs });
  const claimsOf = (peerId: string): number[] =>
    (swarm.schedule(DIGEST, { peerId, limit: 8 })?.assignments ?? []).filter((a) => a.candidates[0]?.kind === 'seed').map((a) => a.piece);

  t.deepEqual(claimsOf('a'), [0, 1]);
  t.deepEqual(claimsOf('b'), [2, 3]);
  // Past the claims' lifetime, the registry still sending: a's request for piece 0 is still held.
  clock.nowMs += PIECE_WAIT_MS + 1_000;
  quietMs = 500;
  t.deepEqual(claimsOf('c'), [1, 2], 'piece 0, arriving now while the fetch moves, stays with a');
  // The fetch then sends nothing for the whole wait: the seed lets a's request go, and so does the claim.
  clock.nowMs += PIECE_WAIT_MS;
  quietMs = PIECE_WAIT_MS;
  t.deepEqual(claimsOf('d'), [0, 1], 'c\'s claims on 1 and 2 ended too');
});

test('a lone child whose claim on an arriving piece was extended still counts as alone in its other blobs', async (t) => {
  const other = `sha256:${'b'.repeat(64)}` as Digest;
  // A one-piece blob: the child's only claim there is on the piece arriving now.
  const store = await storeFetching(t, [[DIGEST, PIECE], [other, 16 * PIECE]]);
  const clock = { nowMs: 1_000_000, now(): number { return this.nowMs; } };
  const scheduler = new Scheduler({ clock });
  scheduler.addPeer({ peerId: 'lone', url: 'http://lone' });
  // Bytes keep coming: every look at the claim on the arriving piece extends it.
  const swarm = new Swarm({ log: silentLogger(), store, scheduler, peers: new PeerTable(), clock, fetchQuietMs: () => 0 });
  const claimsOf = (digest: Digest): number[] =>
    (swarm.schedule(digest, { peerId: 'lone', limit: 8 })?.assignments ?? []).filter((a) => a.candidates[0]?.kind === 'seed').map((a) => a.piece);

  t.deepEqual(claimsOf(DIGEST), [0]);
  clock.nowMs += 1_000;
  claimsOf(DIGEST);
  clock.nowMs += 500;
  // It has waited at the seed for 1.5 s, past ALONE_AFTER_MS: alone, it may hold more than
  // a swarm member's 2 claims, shared over the blobs it pulls (8 over 2).
  const more = claimsOf(other);
  t.true(more.length >= 2, `claims in the other blob: ${JSON.stringify(more)}`);
});
