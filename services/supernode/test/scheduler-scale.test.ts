import test from 'ava';
import { Scheduler } from '../src/scheduler/index.js';

const BLOB = `sha256:${'8'.repeat(64)}`;
const PEERS = 10_000;
const PIECES = 512;

function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

test('10,000 peers × 512 pieces: compact state and cheap schedule calls', (t) => {
  const random = seeded(42);
  let now = 0;
  const s = new Scheduler({ clock: { now: () => now }, random });
  const before = process.memoryUsage();
  s.addBlob(BLOB, PIECES);
  s.seedHas(
    BLOB,
    Array.from({ length: PIECES }, (_, i) => i),
  );
  // Every peer holds about half of the pieces: 2.56 million (peer, piece) pairs.
  for (let i = 0; i < PEERS; i++) {
    s.addPeer({ peerId: `peer-${i}`, url: `http://10.0.${i >> 8}.${i & 255}:65002`, zone: `zone-${i % 3}` });
    const held: number[] = [];
    for (let p = 0; p < PIECES; p++) if (random() < 0.5) held.push(p);
    s.peerHas(`peer-${i}`, BLOB, held);
  }
  const after = process.memoryUsage();
  const grewBytes = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
  t.log(`state for ${PEERS} peers × ${PIECES} pieces: ${(grewBytes / 2 ** 20).toFixed(1)} MiB`);
  t.true(grewBytes < 96 * 2 ** 20, `state grew by ${grewBytes} bytes`);

  const start = performance.now();
  let assigned = 0;
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < PEERS; i++) {
      now += 0.1;
      assigned += s.schedule(`peer-${i}`, BLOB, { limit: 4, urgent: [i % PIECES] }).length;
    }
  }
  const perCallUs = ((performance.now() - start) * 1000) / (2 * PEERS);
  t.log(`${assigned} assignments, ${perCallUs.toFixed(1)} µs per schedule call`);
  t.true(assigned > PEERS, 'most calls get pieces');
  t.true(perCallUs < 1_000, `${perCallUs} µs per call`);
  t.true(s.stats().inflightAssignments <= PEERS * 4);

  for (let i = 0; i < PEERS; i += 2) s.removePeer(`peer-${i}`);
  t.is(s.stats().peers, PEERS / 2);
  now += 20_000;
  t.is(s.stats().inflightAssignments, 0, 'every assignment expired');
});
