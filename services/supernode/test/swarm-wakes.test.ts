/**
 * Which held schedule calls a change in a blob's swarm wakes: the four that
 * have waited longest (each woken call costs a scheduler pass; the rest keep
 * waiting for the next change or the end of their hold), and every chain
 * member's (the one a change serves is the next member's, of any age).
 */
import { setImmediate as tick } from 'node:timers/promises';
import test from 'ava';
import { silentLogger, type Digest } from '@shoal/core';
import { PeerTable } from '../src/peer-table.js';
import { Scheduler } from '../src/scheduler/index.js';
import { Swarm } from '../src/swarm.js';
import { tempStore } from './helpers/temp-store.js';

const DIGEST = `sha256:${'8'.repeat(64)}` as Digest;
/** 64 pieces of 1 MiB: a piece for every member to announce. */
const BLOB_BYTES = 64 * 1024 * 1024;
const MEMBERS = 16;
const HELD_CALLS = 12;

test('a change in a swarm wakes the four held calls that have waited longest', async (t) => {
  const store = await tempStore(t, 'swarm-wakes');
  const held = Array.from({ length: HELD_CALLS }, () => new AbortController());
  const endHeld = (): void => {
    for (const c of held) c.abort();
  };
  t.teardown(endHeld);
  await store.begin(DIGEST, BLOB_BYTES);
  const swarm = new Swarm({ log: silentLogger(), store, scheduler: new Scheduler({ clock: { now: () => Date.now() } }), peers: new PeerTable() });
  for (let i = 0; i < MEMBERS; i++) {
    swarm.peerJoined(`peer-${i}`, `http://10.0.0.${i + 1}:65002`, undefined);
    swarm.peerHas(`peer-${i}`, DIGEST, [i]);
  }

  const woken: number[] = [];
  const calls = held.map((c, i) => swarm.waitForChange(DIGEST, 60_000, c.signal).then(() => woken.push(i)));
  await tick();
  t.deepEqual(woken, [], 'the calls are held');
  swarm.peerHas('peer-0', DIGEST, [MEMBERS]); // a new holder of a piece
  await tick();
  t.deepEqual(woken, [0, 1, 2, 3], 'the four oldest, oldest first');
  endHeld();
  await Promise.all(calls);
});

test("a chain member's held call is woken by every change, whatever its age; others still four at a time", async (t) => {
  const store = await tempStore(t, 'swarm-wakes-chain');
  const held = Array.from({ length: HELD_CALLS }, () => new AbortController());
  const endHeld = (): void => {
    for (const c of held) c.abort();
  };
  t.teardown(endHeld);
  await store.begin(DIGEST, BLOB_BYTES);
  const scheduler = new Scheduler({ clock: { now: () => Date.now() } }, { chainMembers: MEMBERS });
  const swarm = new Swarm({ log: silentLogger(), store, scheduler, peers: new PeerTable() });
  for (let i = 0; i < MEMBERS; i++) {
    swarm.peerJoined(`peer-${i}`, `http://10.0.0.${i + 1}:65002`, undefined);
    swarm.peerHas(`peer-${i}`, DIGEST, [i]);
  }
  // Peers not (yet) in the blob's swarm: their calls are not a chain member's.
  for (let i = 0; i < 6; i++) swarm.peerJoined(`other-${i}`, `http://10.0.1.${i + 1}:65002`, undefined);

  // Calls 0..5 are the others' and wait longest; 6..11 are the chain's members 0..5.
  const peerOf = (i: number): string => (i < 6 ? `other-${i}` : `peer-${i - 6}`);
  const woken: number[] = [];
  const calls = held.map((c, i) => swarm.waitForChange(DIGEST, 60_000, c.signal, peerOf(i)).then(() => woken.push(i)));
  await tick();
  t.deepEqual(woken, [], 'the calls are held');
  swarm.peerHas('peer-0', DIGEST, [MEMBERS]);
  await tick();
  t.deepEqual(
    woken.sort((a, b) => a - b),
    [0, 1, 2, 3, 6, 7, 8, 9, 10, 11],
    "every chain member's call, and the four oldest of the rest",
  );
  endHeld();
  await Promise.all(calls);
});
