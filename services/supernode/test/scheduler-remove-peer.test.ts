import test from 'ava';
import { Scheduler } from '../src/scheduler/index.js';

const BLOB = `sha256:${'6'.repeat(64)}`;

const firstParent = (s: Scheduler, child: string): string | undefined => {
  const c = s.schedule(child, BLOB, { limit: 1 })[0]?.candidates[0];
  return c === undefined ? undefined : c.kind === 'peer' ? c.peerId : 'seed';
};

test('a removed peer drops out of every blob: as a holder, and its own assignments end', (t) => {
  const s = new Scheduler({ clock: { now: () => 0 }, random: () => 0.5 }, { maxUploadsPerPeer: 1 });
  s.addBlob(BLOB, 1);
  for (const id of ['gone', 'p', 'a', 'b', 'c']) s.addPeer({ peerId: id, url: `http://${id}` });
  s.peerHas('gone', BLOB, [0]);
  s.seedHas(BLOB, [0]);
  t.is(firstParent(s, 'a'), 'gone');
  t.is(s.stats().inflightAssignments, 1);

  s.removePeer('gone');
  t.is(s.stats().peers, 4);
  t.is(firstParent(s, 'b'), 'seed', 'no peer holds the piece any more');
  s.peerHas('gone', BLOB, [0]); // unknown peers' announcements are ignored
  t.deepEqual(s.schedule('gone', BLOB, { limit: 1 }), []);

  // Removing a child frees the upload slot its assignment held.
  s.peerHas('p', BLOB, [0]);
  t.is(firstParent(s, 'c'), 'p');
  s.addPeer({ peerId: 'd', url: 'http://d' });
  t.is(firstParent(s, 'd'), undefined, 'p is at its cap, and the seed is not used while a holder is only busy');
  s.removePeer('c');
  t.is(firstParent(s, 'd'), 'p');

  // Re-adding a removed peer starts it afresh.
  s.addPeer({ peerId: 'gone', url: 'http://gone' });
  t.is(s.schedule('gone', BLOB, { limit: 1 }).length, 0, 'p is busy again, and the seed waits for busy holders');
});
