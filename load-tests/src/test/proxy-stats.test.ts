import test from 'ava';
import { proxyStatsSince } from '../netns/services.js';

test("a pull's proxy counters are what they gained over it: new labels kept, unchanged ones dropped", (t) => {
  const before = { bytesBySource: { peer: 100, supernode: 50 }, fallbacksByReason: { first_byte_timeout: 1 }, piecesServed: 10, piecesRelayed: 4 };
  const after = { bytesBySource: { peer: 350, supernode: 50, local: 7 }, fallbacksByReason: { first_byte_timeout: 1, swarm_error: 2 }, piecesServed: 25, piecesRelayed: 9 };
  t.deepEqual(proxyStatsSince(after, before), {
    bytesBySource: { peer: 250, local: 7 },
    fallbacksByReason: { swarm_error: 2 },
    piecesServed: 15,
    piecesRelayed: 5,
  });
});
