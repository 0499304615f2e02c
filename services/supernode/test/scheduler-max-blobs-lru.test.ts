import test from 'ava';
import { Scheduler } from '../src/scheduler/index.js';

const digest = (c: string): string => `sha256:${c.repeat(64)}`;

test('at most maxBlobs blobs are kept; the least recently used is forgotten with its assignments', (t) => {
  const s = new Scheduler({ clock: { now: () => 0 }, random: () => 0.5 }, { maxBlobs: 2 });
  for (const id of ['p', 'c']) s.addPeer({ peerId: id, url: `http://${id}` });
  s.addBlob(digest('a'), 2);
  s.addBlob(digest('b'), 2);
  s.peerHas('p', digest('a'), [0, 1]);
  s.peerHas('p', digest('b'), [0, 1]);
  t.is(s.schedule('c', digest('b'), { limit: 1 }).length, 1);
  s.schedule('c', digest('a'), { limit: 0 }); // any use makes `a` the most recent
  t.is(s.stats().inflightAssignments, 1);

  s.addBlob(digest('c'), 2);
  t.is(s.stats().blobs, 2);
  t.is(s.stats().inflightAssignments, 0, 'b went, and its assignment with it');
  t.deepEqual(s.schedule('c', digest('b'), { limit: 1 }), [], 'b is unknown now');
  t.is(s.schedule('c', digest('a'), { limit: 1 }).length, 1, 'a is still there');

  s.addBlob(digest('a'), 2); // idempotent: no reset
  t.is(s.stats().inflightAssignments, 1);
});
