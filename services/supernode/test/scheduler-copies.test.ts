import test from 'ava';
import { Scheduler } from '../src/scheduler/index.js';

// copies() is what the status page's "copies on nodes" shows: live peers with
// every piece, and with at least one. The last byte of each bitmap has padding
// bits set (11 pieces: 5 padding bits), which must not count as pieces held.
test('copies counts live peers holding every piece and those holding some, ignoring bitmap padding and removed peers', (t) => {
  const s = new Scheduler({ clock: { now: () => 0 } });
  s.addBlob('b', 11);
  t.deepEqual(s.copies('b'), { complete: 0, holders: 0, pieceCount: 11 });
  t.is(s.copies('unknown'), undefined);
  for (const id of ['p1', 'p2', 'p3', 'p4']) s.addPeer({ peerId: id, url: `http://${id}` });
  s.peerHas('p1', 'b', Array.from({ length: 11 }, (_, i) => i));
  s.peerHas('p2', 'b', Array.from({ length: 11 }, (_, i) => i));
  s.peerHas('p3', 'b', [10]); // only the piece in the padded byte
  s.peerHas('p4', 'b', Array.from({ length: 10 }, (_, i) => i)); // all but the last
  t.deepEqual(s.copies('b'), { complete: 2, holders: 4, pieceCount: 11 });
  s.removePeer('p2');
  t.deepEqual(s.copies('b'), { complete: 1, holders: 3, pieceCount: 11 });
  s.peerDropped('p1', 'b');
  t.deepEqual(s.copies('b'), { complete: 0, holders: 2, pieceCount: 11 });
});
