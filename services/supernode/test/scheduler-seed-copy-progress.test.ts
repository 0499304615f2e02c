// Regression: the seed's patience with a copy in flight was wall-clock (2.5 s
// from the copy's start). On a 25 Mbit/s link shared by 16 children a 1 MiB
// copy takes longer than that, so the scheduler handed out a second, third and
// fourth copy of pieces that were still arriving: the supernode's host sent
// 3.6 × S (bench:swarm). Now patience runs from the copy's last progress.
import test from 'ava';
import { Scheduler } from '../src/scheduler/index.js';

const BLOB = `sha256:${'5'.repeat(64)}`;

const pick = (s: Scheduler, child: string): Array<[number, string[]]> =>
  s.schedule(child, BLOB, { limit: 1 }).map((a) => [a.piece, a.candidates.map((c) => (c.kind === 'peer' ? c.peerId : 'seed'))]);

test('a seed copy that makes progress is never duplicated, however long it takes; a stalled one is', (t) => {
  let now = 0;
  const s = new Scheduler({ clock: { now: () => now }, random: () => 0.5 }, { assignmentTtlMs: 20_000, maxSeedUploads: 64 });
  s.addBlob(BLOB, 1);
  for (const id of ['a', 'b']) s.addPeer({ peerId: id, url: `http://${id}` });
  s.seedHas(BLOB, [0]);
  t.deepEqual(pick(s, 'a'), [[0, ['seed']]]);

  // a's copy moves slowly for a minute (longer than the TTL too): b waits, a keeps its assignment.
  for (let i = 0; i < 60; i++) {
    now += 1_000;
    s.seedProgress(BLOB, 0);
    t.deepEqual(pick(s, 'b'), [], `b waits at ${now} ms`);
  }
  t.is(s.stats().seedInflight, 1);

  // Then it stalls: once the patience (TTL / 8) has passed without progress, b gets a copy.
  now += 2_499;
  t.deepEqual(pick(s, 'b'), []);
  now += 1;
  t.deepEqual(pick(s, 'b'), [[0, ['seed']]]);
  t.is(s.stats().seedInflight, 2);
});
