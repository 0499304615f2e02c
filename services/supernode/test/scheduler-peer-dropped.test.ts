import test from 'ava';
import { Scheduler } from '../src/scheduler/index.js';

const BLOB = `sha256:${'7'.repeat(64)}`;
const OTHER = `sha256:${'8'.repeat(64)}`;

const firstParent = (s: Scheduler, child: string, digest = BLOB): string | undefined => {
  const c = s.schedule(child, digest, { limit: 1 })[0]?.candidates[0];
  return c === undefined ? undefined : c.kind === 'peer' ? c.peerId : 'seed';
};

test('a peer that dropped a blob stops being its parent, its own assignments for it end, and its other blobs are untouched', (t) => {
  const s = new Scheduler({ clock: { now: () => 0 }, random: () => 0.5 });
  s.addBlob(BLOB, 3);
  s.addBlob(OTHER, 1);
  for (const id of ['quitter', 'a', 'b', 'c']) s.addPeer({ peerId: id, url: `http://${id}` });
  s.seedHas(BLOB, [0, 1, 2]);
  s.peerHas('quitter', BLOB, [0, 1]);
  s.peerHas('quitter', OTHER, [0]);
  // The quitter is still fetching piece 2 (from the seed) when it gives the blob up.
  t.deepEqual(s.schedule('quitter', BLOB, { limit: 1 }).map((a) => a.piece), [2]);
  t.is(firstParent(s, 'a'), 'quitter');
  const before = s.stats().inflightAssignments;

  s.peerDropped('quitter', BLOB);
  // Its fetch of piece 2 is over; a's fetch from it ends with a's failure report, as for a removed peer.
  t.is(s.stats().inflightAssignments, before - 1);
  t.is(firstParent(s, 'b'), 'seed', 'no peer holds the blob any more');
  t.is(firstParent(s, 'c', OTHER), 'quitter', 'its other blob is untouched');

  // Dropping again, or an unknown peer or blob, changes nothing.
  s.peerDropped('quitter', BLOB);
  s.peerDropped('stranger', BLOB);
  s.peerDropped('quitter', `sha256:${'9'.repeat(64)}`);
  t.is(s.stats().peers, 4);

  // Fetched again later, it is a parent again.
  s.peerHas('quitter', BLOB, [0, 1, 2]);
  s.addPeer({ peerId: 'd', url: 'http://d' });
  t.is(firstParent(s, 'd'), 'quitter');
});
