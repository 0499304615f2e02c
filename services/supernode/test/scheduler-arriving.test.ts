import test from 'ava';
import { Scheduler } from '../src/scheduler/index.js';

const BLOB = `sha256:${'6'.repeat(64)}`;

const parents = (s: Scheduler, child: string): string[] =>
  (s.schedule(child, BLOB, { limit: 1 })[0]?.candidates ?? []).map((c) => (c.kind === 'peer' ? c.peerId : 'seed'));

test('a peer whose copy of a piece is arriving is its parent at once, and stops being one when the copy fails', (t) => {
  const s = new Scheduler({ clock: { now: () => 0 }, random: () => 0.5 });
  s.addBlob(BLOB, 1);
  for (const id of ['a', 'b', 'c', 'd']) s.addPeer({ peerId: id, url: `http://${id}` });
  s.seedHas(BLOB, [0]);
  t.deepEqual(parents(s, 'a'), ['seed']);
  t.deepEqual(parents(s, 'b'), [], 'super-seeding: the only copy is on its way to a');
  const inflight = s.stats().inflightAssignments;

  t.deepEqual(s.peerArriving('a', BLOB, [0]), [0]);
  t.is(s.stats().inflightAssignments, inflight, "a's own fetch is still in flight");
  t.deepEqual(parents(s, 'b')[0], 'a', 'b is sent to a while a still receives the piece');
  t.deepEqual(s.schedule('a', BLOB, { limit: 1 }), [], 'a is not given the piece it is receiving');

  s.peerArrivalFailed('a', BLOB, [0]);
  t.false(parents(s, 'c').includes('a'), 'a holds nothing once its copy failed');

  // Announced again, then verified: a stays a holder, and a late failure report of the old copy changes nothing.
  s.peerArriving('a', BLOB, [0]);
  t.deepEqual(s.peerHas('a', BLOB, [0]), [0], 'verified: counted as newly held');
  s.peerArrivalFailed('a', BLOB, [0]);
  t.is(parents(s, 'd')[0], 'a');
  // Unknown peers, blobs and pieces are ignored.
  t.deepEqual(s.peerArriving('stranger', BLOB, [0]), []);
  t.deepEqual(s.peerArriving('b', BLOB, [-1, 7]), []);
  s.peerArrivalFailed('b', `sha256:${'9'.repeat(64)}`, [0]);
});
