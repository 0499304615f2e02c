import test from 'ava';
import { Scheduler } from '../src/scheduler/index.js';

const BLOB = `sha256:${'5'.repeat(64)}`;

const parentOf = (a: { candidates: ReadonlyArray<{ kind: string; peerId?: string }> } | undefined): string | undefined =>
  a === undefined ? undefined : a.candidates[0]?.kind === 'seed' ? 'seed' : a.candidates[0]?.peerId;

test('a starving child (nothing in flight, reader blocked) may take one slot past a busy holder’s cap; others wait', (t) => {
  const s = new Scheduler({ clock: { now: () => 0 }, random: () => 0.5 }, { maxUploadsPerPeer: 1 });
  s.addBlob(BLOB, 4);
  s.seedHas(BLOB, [0, 1, 2, 3]);
  for (const id of ['holder', 'a', 'b', 'c', 'd']) s.addPeer({ peerId: id, url: `http://${id}` });
  s.peerHas('holder', BLOB, [0, 1, 2, 3]);
  t.is(parentOf(s.schedule('a', BLOB, { limit: 1, urgent: [0] })[0]), 'holder', 'a takes the holder’s only slot');

  // b has nothing in flight and its reader waits for piece 0: one slot past the cap.
  t.is(parentOf(s.schedule('b', BLOB, { limit: 1, urgent: [0] })[0]), 'holder');
  // c asks for bulk pieces only: the busy holder is waited for, as before (the seed is not used).
  t.deepEqual(s.schedule('c', BLOB, { limit: 1 }), []);
  // The extra slot is one, not one per child: d waits too.
  t.deepEqual(s.schedule('d', BLOB, { limit: 1, urgent: [0] }), [], 'the holder is now at cap + 1');
});

test('a child with a piece in flight is not starving: its blocked piece waits for a free slot', (t) => {
  const s = new Scheduler({ clock: { now: () => 0 }, random: () => 0.5 }, { maxUploadsPerPeer: 1 });
  s.addBlob(BLOB, 4);
  s.seedHas(BLOB, [0, 1, 2, 3]);
  for (const id of ['h1', 'h2', 'a', 'b']) s.addPeer({ peerId: id, url: `http://${id}` });
  s.peerHas('h1', BLOB, [0, 1, 2, 3]);
  s.peerHas('h2', BLOB, [1]);
  t.is(parentOf(s.schedule('a', BLOB, { limit: 1, urgent: [0] })[0]), 'h1');
  t.is(parentOf(s.schedule('b', BLOB, { limit: 1, urgent: [1] })[0]), 'h2', 'b has piece 1 in flight now');
  t.deepEqual(s.schedule('b', BLOB, { limit: 1, urgent: [0] }), [], 'b is fed: piece 0 waits for h1');
});
