/**
 * Which held schedule calls a change in a blob's swarm wakes: every one in a
 * swarm of WAKE_ALL_MEMBERS or fewer (the one child a freed slot or a new
 * holder can serve must not wait out its hold), the four that have waited
 * longest in a larger one (each woken call costs a scheduler pass).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { silentLogger, type Digest } from '@shoal/core';
import { PieceStore } from '@shoal/store';
import { PeerTable } from '../src/peer-table.js';
import { Scheduler } from '../src/scheduler/index.js';
import { Swarm, WAKE_ALL_MEMBERS } from '../src/swarm.js';

const DIGEST = `sha256:${'8'.repeat(64)}` as Digest;
/** 64 pieces of 1 MiB: a piece for every member to announce. */
const BLOB_BYTES = 64 * 1024 * 1024;
const HELD_CALLS = 12;

/** A swarm whose blob has `members` members, each holding one piece, and HELD_CALLS held calls; returns how many one change wakes. */
async function wokenByOneChange(t: ExecutionContext, members: number): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-swarm-wakes-'));
  const store = await PieceStore.open({ log: silentLogger() }, { dir });
  const held = Array.from({ length: HELD_CALLS }, () => new AbortController());
  const endHeld = (): void => {
    for (const c of held) c.abort();
  };
  t.teardown(async () => {
    endHeld();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  await store.begin(DIGEST, BLOB_BYTES);
  const swarm = new Swarm({ log: silentLogger(), store, scheduler: new Scheduler({ clock: { now: () => Date.now() } }), peers: new PeerTable() });
  for (let i = 0; i < members; i++) {
    swarm.peerJoined(`peer-${i}`, `http://10.0.0.${i + 1}:65002`, undefined);
    swarm.peerHas(`peer-${i}`, DIGEST, [i]);
  }

  let woken = 0;
  const calls = held.map((c) => swarm.waitForChange(DIGEST, 60_000, c.signal).then(() => woken++));
  await tick();
  t.is(woken, 0, 'the calls are held');
  swarm.peerHas('peer-0', DIGEST, [members]); // a new holder of a piece
  await tick();
  const afterChange = woken;
  endHeld();
  await Promise.all(calls);
  return afterChange;
}

test(`a swarm of ${WAKE_ALL_MEMBERS} members wakes every held call on a change`, async (t) => {
  t.is(await wokenByOneChange(t, WAKE_ALL_MEMBERS), HELD_CALLS);
});

test('a larger swarm wakes the four calls that have waited longest', async (t) => {
  t.is(await wokenByOneChange(t, WAKE_ALL_MEMBERS + 1), 4);
});
