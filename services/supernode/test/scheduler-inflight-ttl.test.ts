import test from 'ava';
import { Scheduler } from '../src/scheduler/index.js';

const BLOB = `sha256:${'5'.repeat(64)}`;

test('an assignment counts as an upload of its parent until announced, reported, or assignmentTtlMs passes', (t) => {
  let now = 0;
  const s = new Scheduler({ clock: { now: () => now }, random: () => 0.5 }, { assignmentTtlMs: 20_000, maxUploadsPerPeer: 1 });
  s.addBlob(BLOB, 3);
  for (const id of ['p', 'a', 'b']) s.addPeer({ peerId: id, url: `http://${id}` });
  s.peerHas('p', BLOB, [0, 1, 2]);

  t.deepEqual(
    s.schedule('a', BLOB, { limit: 1 }).map((x) => x.piece),
    [0],
  );
  t.is(s.stats().inflightAssignments, 1);
  t.deepEqual(s.schedule('b', BLOB, { limit: 1 }), [], 'p is at its cap of one upload');
  t.deepEqual(s.schedule('a', BLOB, { limit: 1 }), [], 'piece 0 is not handed to a twice');

  now = 19_999;
  t.deepEqual(s.schedule('b', BLOB, { limit: 1 }), []);
  now = 20_000;
  t.deepEqual(
    s.schedule('b', BLOB, { limit: 1 }).map((x) => x.piece),
    [0],
    'a’s assignment expired: p is free, piece 0 is rarest again',
  );
  t.is(s.stats().inflightAssignments, 1);

  // Announcing the piece ends the assignment at once.
  s.peerHas('b', BLOB, [0]);
  t.is(s.stats().inflightAssignments, 0);
  t.deepEqual(
    s.schedule('a', BLOB, { limit: 1 }).map((x) => x.piece),
    [1],
  );
});
