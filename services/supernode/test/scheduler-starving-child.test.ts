import test from 'ava';
import { LONE_CHILD_SEED_DOWNLOADS, Scheduler } from '../src/scheduler/index.js';

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

test("a starving child gets the seed for a small blob even when its seed copies of another blob fill its own cap", (t) => {
  const s = new Scheduler({ clock: { now: () => 0 }, random: () => 0.5 }, { maxSeedDownloadsPerChild: 2 });
  const layer = `sha256:${'6'.repeat(64)}`;
  const config = `sha256:${'8'.repeat(64)}`;
  s.addPeer({ peerId: 'alone', url: 'http://alone' });
  s.addBlob(layer, 64);
  s.seedHas(layer, Array.from({ length: 64 }, (_, i) => i));
  s.addBlob(config, 1);
  s.seedHas(config, [0]);
  // The big layer's bulk pieces take the child's two seed copies.
  t.is(s.schedule('alone', layer, { limit: 8 }).length, 2);
  // The config's reader waits for its only piece: the seed serves it now, not after the layer.
  t.is(parentOf(s.schedule('alone', config, { limit: 1, urgent: [0] })[0]), 'seed');
});

test('a child alone in a blob (its only member) is given more seed copies once it asks again; with a second member, the cap is back', (t) => {
  const s = new Scheduler({ clock: { now: () => 0 }, random: () => 0.5 }, { maxSeedDownloadsPerChild: 2, maxSeedUploads: 64 });
  const layer = `sha256:${'6'.repeat(64)}`;
  for (const id of ['first', 'second']) s.addPeer({ peerId: id, url: `http://${id}` });
  s.addBlob(layer, 64);
  s.seedHas(layer, Array.from({ length: 64 }, (_, i) => i));
  t.is(s.schedule('first', layer, { limit: 16 }).length, 2, 'a first call: the usual two');
  t.is(s.schedule('first', layer, { limit: 16 }).length, LONE_CHILD_SEED_DOWNLOADS - 2, 'alone and asking again: up to LONE_CHILD_SEED_DOWNLOADS');
  t.is(s.schedule('second', layer, { limit: 16 }).length, 2);
  t.deepEqual(s.schedule('second', layer, { limit: 16 }), [], 'two members: two copies each');
});
