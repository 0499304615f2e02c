import test from 'ava';
import { Scheduler } from '../src/scheduler/index.js';

const DIGEST = `sha256:${'b'.repeat(64)}`;

test('pieces go rarest first (holders + in-flight copies), ties by lowest index', (t) => {
  const s = new Scheduler({ clock: { now: () => 0 }, random: () => 0.5 });
  s.addBlob(DIGEST, 4);
  for (const id of ['h1', 'h2', 'h3', 'x', 'y', 'z']) s.addPeer({ peerId: id, url: `http://${id}` });
  // Holders per piece: 0 → 3, 1 → 1, 2 → 2, 3 → 1.
  s.peerHas('h1', DIGEST, [0, 1, 2]);
  s.peerHas('h2', DIGEST, [0, 2, 3]);
  s.peerHas('h3', DIGEST, [0]);

  t.deepEqual(
    s.schedule('z', DIGEST, { limit: 4 }).map((a) => a.piece),
    [1, 3, 2, 0],
  );
  // z's copies now count: 0 → 4, 1 → 2, 2 → 3, 3 → 2. x takes 1 (lowest of the tie),
  // which makes 3 the rarest for y.
  t.deepEqual(
    s.schedule('x', DIGEST, { limit: 1 }).map((a) => a.piece),
    [1],
  );
  t.deepEqual(
    s.schedule('y', DIGEST, { limit: 1 }).map((a) => a.piece),
    [3],
  );
});
