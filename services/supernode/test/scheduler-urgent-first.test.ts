import test from 'ava';
import { Scheduler } from '../src/scheduler/index.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

test('urgent pieces come first, in the order given, skipping ones the child has or nobody holds', (t) => {
  const clock = { now: () => 0 };
  const s = new Scheduler({ clock, random: () => 0.5 });
  s.addBlob(DIGEST, 10);
  for (const id of ['p1', 'p2', 'child']) s.addPeer({ peerId: id, url: `http://${id}` });
  s.peerHas('p1', DIGEST, [0, 1, 2, 3, 4, 5, 6, 7]);
  s.peerHas('p2', DIGEST, [0, 1, 2, 3, 4, 5, 6, 7]);
  s.peerHas('child', DIGEST, [5]);

  const got = s.schedule('child', DIGEST, { limit: 3, urgent: [9, 5, 7, 3] });
  // 9: nobody holds it; 5: the child has it; then rarest first (all tie) by lowest index.
  t.deepEqual(
    got.map((a) => a.piece),
    [7, 3, 0],
  );
  // Urgent pieces already in flight for the child are not handed out twice.
  const again = s.schedule('child', DIGEST, { limit: 1, urgent: [7, 3, 6] });
  t.deepEqual(
    again.map((a) => a.piece),
    [6],
  );
});
