import test from 'ava';
import { RARE_PIECE_HOLDERS, Scheduler } from '../src/scheduler/index.js';

const BLOB = `sha256:${'8'.repeat(64)}`;

// At N=16 on 10 Mbit/s links, a piece that had just landed at its first holder
// waited 6 s there for a second copy: the holder's upload slots were all taken
// by pieces other peers could have served, and the swarm's tail stretched by
// as much. A parent's last slot is kept for pieces few peers hold.
test("a parent's last upload slot is kept for a piece few peers hold", (t) => {
  t.is(RARE_PIECE_HOLDERS, 2);
  const s = new Scheduler({ clock: { now: () => 0 }, random: () => 0.5 }, { maxUploadsPerPeer: 4, candidatesPerPiece: 1 });
  s.addBlob(BLOB, 16);
  const children = Array.from({ length: 10 }, (_, i) => `c${i}`);
  for (const id of ['p', 'q', 'r', 's', ...children]) s.addPeer({ peerId: id, url: `http://${id}` });
  // Piece 0 is common (p, q and r hold it); each parent also holds pieces nobody else has.
  for (const id of ['p', 'q', 'r']) s.peerHas(id, BLOB, [0]);
  s.peerHas('p', BLOB, [1, 2, 3, 4]);
  s.peerHas('q', BLOB, [5, 6, 7]);
  s.peerHas('r', BLOB, [8, 9, 10]);
  s.peerHas('s', BLOB, [11, 12]);
  const parentOf = (child: string, piece: number): string | undefined => {
    const c = s.schedule(child, BLOB, { limit: 1, urgent: [piece] })[0]?.candidates[0];
    return c?.kind === 'peer' ? c.peerId : c?.kind;
  };
  // Three uploads each.
  const rare = [1, 2, 3, 5, 6, 7, 8, 9, 10];
  rare.forEach((piece, i) => t.is(parentOf(`c${i}`, piece), piece <= 4 ? 'p' : piece <= 7 ? 'q' : 'r'));
  // c9 has a piece in flight from s: it is not starving (a starving child may go past a cap).
  t.is(parentOf('c9', 11), 's');
  const answer = s.schedule('c9', BLOB, { limit: 1, urgent: [0] }).map((a) => [a.piece, a.candidates.map((c) => (c.kind === 'peer' ? c.peerId : c.kind))]);
  // The common piece waits (every holder is down to its last slot); p's last slot goes to the piece only p holds.
  t.deepEqual(answer, [[4, ['p']]]);
});
