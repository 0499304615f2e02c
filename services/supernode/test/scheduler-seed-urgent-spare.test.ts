import test from 'ava';
import { Scheduler, SEED_URGENT_SPARE_PER_PIECE } from '../src/scheduler/index.js';

const BLOB = `sha256:${'7'.repeat(64)}`;

test('with every holder busy, the seed serves a piece a reader waits for, within the blob’s spare budget', (t) => {
  const s = new Scheduler({ clock: { now: () => 0 }, random: () => 0.5 }, { maxUploadsPerPeer: 1 });
  const pieces = 4;
  s.addBlob(BLOB, pieces);
  s.seedHas(BLOB, [0, 1, 2, 3]);
  const children = ['c0', 'c1', 'c2', 'c3', 'c4', 'c5'];
  for (const id of ['holder', ...children]) s.addPeer({ peerId: id, url: `http://${id}` });
  s.peerHas('holder', BLOB, [0, 1, 2, 3]);
  const parentOf = (a: { candidates: ReadonlyArray<{ kind: string; peerId?: string }> } | undefined): string | undefined =>
    a === undefined ? undefined : a.candidates[0]?.kind === 'seed' ? 'seed' : a.candidates[0]?.peerId;

  t.is(parentOf(s.schedule('c0', BLOB, { limit: 1, urgent: [0] })[0]), 'holder', 'the holder first, while it has a slot');
  t.is(s.schedule('c1', BLOB, { limit: 1 }).length, 0, 'not urgent: waits for the busy holder, as before');
  // Urgent: the seed steps in, up to SEED_URGENT_SPARE_PER_PIECE × 4 pieces = 2 copies.
  const budget = Math.floor(pieces * SEED_URGENT_SPARE_PER_PIECE);
  t.is(budget, 2);
  const spares = children.slice(1).map((c) => parentOf(s.schedule(c, BLOB, { limit: 1, urgent: [1] })[0]));
  t.deepEqual(spares, ['seed', 'seed', undefined, undefined, undefined], 'two urgent copies from the seed, then the budget is spent');
});

test('no spare copies while the seed still has first copies of the blob to send', (t) => {
  const s = new Scheduler({ clock: { now: () => 0 }, random: () => 0.5 }, { maxUploadsPerPeer: 1 });
  s.addBlob(BLOB, 4);
  s.seedHas(BLOB, [0, 1, 2, 3]);
  for (const id of ['holder', 'c0', 'c1']) s.addPeer({ peerId: id, url: `http://${id}` });
  s.peerHas('holder', BLOB, [0, 1, 2]); // piece 3 is held by no peer: only the seed has it
  t.is(s.schedule('c0', BLOB, { limit: 1, urgent: [0] })[0]?.candidates[0]?.kind, 'peer');
  const got = s.schedule('c1', BLOB, { limit: 4, urgent: [0] });
  t.false(got.some((a) => a.piece === 0), 'piece 0 waits for its busy holder');
  t.deepEqual(got.map((a) => [a.piece, a.candidates[0]?.kind]), [[3, 'seed']], 'the seed sends the piece only it has');
});
