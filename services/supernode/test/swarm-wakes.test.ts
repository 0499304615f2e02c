/**
 * Which held schedule calls a change in a blob's swarm wakes: the four that
 * have waited longest (each woken call costs a scheduler pass; the rest keep
 * waiting for the next change or the end of their hold).
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
