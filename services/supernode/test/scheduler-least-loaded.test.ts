import test from 'ava';
import { Scheduler } from '../src/scheduler/index.js';

const BLOB = `sha256:${'e'.repeat(64)}`;
const OTHER = `sha256:${'f'.repeat(64)}`;

const peerIds = (cs: ReadonlyArray<{ kind: string; peerId?: string }>): string[] => cs.map((c) => c.peerId ?? c.kind);

test('candidates are the least loaded holders first; parents at maxUploadsPerPeer are skipped', (t) => {
  const s = new Scheduler({ clock: { now: () => 0 }, random: () => 0.3 }, { candidatesPerPiece: 3, maxUploadsPerPeer: 4 });
  s.addBlob(BLOB, 1);
  s.addBlob(OTHER, 8);
  for (const id of ['p1', 'p2', 'p3', 'child', 'c1', 'c2', 'c3', 'c4', 'c5']) s.addPeer({ peerId: id, url: `http://${id}` });
  for (const id of ['p1', 'p2', 'p3']) s.peerHas(id, BLOB, [0]);
  // Uploads of another blob: p1 gets three, p2 one, p3 none.
  s.peerHas('p1', OTHER, [0, 1, 2]);
  s.peerHas('p2', OTHER, [3]);
  for (const [child, piece] of [['c1', 0], ['c2', 1], ['c3', 2], ['c4', 3]] as const) {
    t.deepEqual(peerIds(s.schedule(child, OTHER, { limit: 1, urgent: [piece] })[0]?.candidates ?? []), [piece === 3 ? 'p2' : 'p1']);
  }
  // p1, at three uploads, keeps its last slot for pieces few peers hold (RARE_PIECE_HOLDERS); three hold this one.
  t.deepEqual(peerIds(s.schedule('child', BLOB, { limit: 1 })[0]?.candidates ?? []), ['p3', 'p2']);

  // A piece only p1 holds may still take its fourth slot; then p1 is at the cap.
  s.peerHas('p1', OTHER, [4]);
  t.deepEqual(peerIds(s.schedule('c5', OTHER, { limit: 1, urgent: [4] })[0]?.candidates ?? []), ['p1']);
  s.addPeer({ peerId: 'late', url: 'http://late' });
  t.deepEqual(peerIds(s.schedule('late', BLOB, { limit: 1 })[0]?.candidates ?? []).sort(), ['p2', 'p3']);
});
