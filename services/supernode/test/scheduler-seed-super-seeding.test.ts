import test from 'ava';
import { Scheduler } from '../src/scheduler/index.js';

const BLOB = `sha256:${'4'.repeat(64)}`;

const pick = (s: Scheduler, child: string): Array<[number, string[]]> =>
  s.schedule(child, BLOB, { limit: 1 }).map((a) => [a.piece, a.candidates.map((c) => (c.kind === 'peer' ? c.peerId : 'seed'))]);

test('the seed sends each piece once: a piece on its way from the seed to someone, held by no peer, waits', (t) => {
  let now = 0;
  // TTL 20 s → a seed copy is duplicated only after 20 s / 8 = 2.5 s.
  const s = new Scheduler({ clock: { now: () => now }, random: () => 0.5 }, { assignmentTtlMs: 20_000, maxSeedUploads: 64 });
  s.addBlob(BLOB, 4);
  for (const id of ['a', 'b', 'c', 'd']) s.addPeer({ peerId: id, url: `http://${id}` });
  s.seedHas(BLOB, [0, 1]);

  t.deepEqual(pick(s, 'a'), [[0, ['seed']]], 'only the seed has it: the seed is the only candidate');
  t.deepEqual(pick(s, 'b'), [[1, ['seed']]], 'piece 0 is postponed for b while 1 is available');
  t.deepEqual(pick(s, 'c'), [], 'nothing else: c waits rather than take a second copy from the seed');
  t.is(s.stats().seedInflight, 2);

  // Once a holds piece 0, c gets it from a, with the seed as last resort.
  s.peerHas('a', BLOB, [0]);
  t.deepEqual(pick(s, 'c'), [[0, ['a', 'seed']]]);
  t.is(s.stats().seedInflight, 1);

  // A seed copy that takes too long (here: b's copy of piece 1) may be duplicated.
  now += 2_499;
  t.deepEqual(pick(s, 'd'), [[0, ['a', 'seed']]]);
  now += 1;
  s.addPeer({ peerId: 'e', url: 'http://e' });
  s.peerHas('e', BLOB, [0]);
  t.deepEqual(pick(s, 'e'), [[1, ['seed']]], 'e has nothing else to fetch');
  t.is(s.stats().seedInflight, 2);
});

test('the seed has its own upload cap', (t) => {
  const s = new Scheduler({ clock: { now: () => 0 }, random: () => 0.5 }, { maxSeedUploads: 2 });
  s.addBlob(BLOB, 4);
  for (const id of ['a', 'b', 'c']) s.addPeer({ peerId: id, url: `http://${id}` });
  s.seedHas(BLOB, [0, 1, 2, 3]);
  t.is(s.schedule('a', BLOB, { limit: 1 }).length, 1);
  t.is(s.schedule('b', BLOB, { limit: 1 }).length, 1);
  t.deepEqual(s.schedule('c', BLOB, { limit: 1 }), []);
  t.is(s.stats().seedInflight, 2);
});

// At N=16 on 25 Mbit/s links a child with five layers was given more seed
// copies than its connections to the supernode: the extra requests queued in
// the child, moved no bytes, looked dead to the seed's patience, and every
// piece left the supernode 2–5 times.
test('a child is given few seed copies at once, over all blobs: the rest go to other children', (t) => {
  const OTHER = `sha256:${'5'.repeat(64)}`;
  const s = new Scheduler({ clock: { now: () => 0 }, random: () => 0.5 }, { maxSeedUploads: 64, maxSeedDownloadsPerChild: 2 });
  s.addBlob(BLOB, 4);
  s.addBlob(OTHER, 4);
  for (const id of ['a', 'b']) s.addPeer({ peerId: id, url: `http://${id}` });
  s.seedHas(BLOB, [0, 1, 2, 3]);
  s.seedHas(OTHER, [0, 1, 2, 3]);
  t.is(s.schedule('a', BLOB, { limit: 8 }).length, 2, 'two of the four pieces only the seed has');
  t.deepEqual(s.schedule('a', OTHER, { limit: 8 }), [], 'a holds its two seed copies, whichever the blob');
  t.is(s.schedule('b', BLOB, { limit: 8 }).length, 2, 'b gets the other two');
  s.peerHas('a', BLOB, [0]);
  t.is(s.schedule('a', OTHER, { limit: 8 }).length, 1, 'a copy that ended frees a place');
});
