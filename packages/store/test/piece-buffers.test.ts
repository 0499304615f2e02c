import test from 'ava';
import { PieceBufferPool } from '../src/piece-buffers.js';

const MiB = 1024 * 1024;

test('a buffer given back is the one taken next for its size', (t) => {
  const pool = new PieceBufferPool(4 * MiB);
  const a = pool.take(MiB);
  pool.give(a);
  t.is(pool.idleByteCount, MiB);
  t.is(pool.take(MiB), a);
  t.is(pool.idleByteCount, 0);
  t.not(pool.take(MiB), a);
});

test('a size in use takes the budget from sizes given back earlier', (t) => {
  // A process that served small blobs (1 MiB pieces) fills the budget with their
  // buffers; a larger blob's 2 MiB pieces must still be reused, not allocated anew.
  const pool = new PieceBufferPool(4 * MiB);
  const small = [pool.take(MiB), pool.take(MiB), pool.take(MiB), pool.take(MiB)];
  for (const b of small) pool.give(b);
  t.is(pool.idleByteCount, 4 * MiB);

  const large = pool.take(2 * MiB);
  pool.give(large);
  t.is(pool.idleByteCount, 4 * MiB, 'two small buffers made room');
  t.is(pool.take(2 * MiB), large);
  const leftSmall = [pool.take(MiB), pool.take(MiB)];
  t.true(leftSmall.every((b) => small.includes(b)), 'the other two small ones are still idle');
});

test('a size never pushes out its own buffers, and the budget holds', (t) => {
  const pool = new PieceBufferPool(4 * MiB);
  const [a, b, c] = [pool.take(2 * MiB), pool.take(2 * MiB), pool.take(2 * MiB)];
  for (const buffer of [a, b, c]) pool.give(buffer);
  t.is(pool.idleByteCount, 4 * MiB);
  t.is(pool.take(2 * MiB), b);
  t.is(pool.take(2 * MiB), a);
  t.not(pool.take(2 * MiB), c, 'the third did not fit and was left to the GC');
});

test('sizes are dropped least recently given back first', (t) => {
  const pool = new PieceBufferPool(5 * MiB);
  const one = pool.take(MiB);
  const two = pool.take(2 * MiB);
  pool.give(two);
  pool.give(one); // 1 MiB is now the most recent size
  t.is(pool.take(2 * MiB), two);
  pool.give(two); // and now 2 MiB is
  pool.give(pool.take(3 * MiB)); // 3 MiB needs room: 1 MiB was given back before 2 MiB
  t.is(pool.idleByteCount, 5 * MiB);
  t.is(pool.take(2 * MiB), two, 'the 2 MiB buffer stayed');
  t.not(pool.take(MiB), one, 'the 1 MiB buffer was dropped');
});

test('a buffer larger than the whole budget is not kept', (t) => {
  const pool = new PieceBufferPool(4 * MiB);
  pool.give(pool.take(MiB));
  pool.give(Buffer.allocUnsafeSlow(8 * MiB));
  t.is(pool.idleByteCount, MiB);
});
