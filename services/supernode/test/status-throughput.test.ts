import test from 'ava';
import { PeerThroughput, THROUGHPUT_WINDOW_MS } from '../src/routes/status-throughput.js';

// The status page's per-peer throughput: bytes reported over the last minute,
// per second; older bytes leave the window, totals stay, a forgotten peer reads 0.
test('recent throughput covers the last minute only; totals keep everything', (t) => {
  let now = 1_000_000;
  const tp = new PeerThroughput({ clock: { now: () => now } });
  tp.add('a', 6_000_000);
  tp.add('b', 600);
  t.is(tp.recentBytesPerSec('a'), 100_000);
  now += THROUGHPUT_WINDOW_MS / 2;
  tp.add('a', 6_000_000);
  t.is(tp.recentBytesPerSec('a'), 200_000);
  now += THROUGHPUT_WINDOW_MS / 2 + 10_000;
  t.is(tp.recentBytesPerSec('a'), 100_000, 'the first report left the window');
  t.is(tp.totalOf('a'), 12_000_000);
  t.is(tp.total, 12_000_600);
  tp.forget('b');
  t.is(tp.totalOf('b'), 0);
  t.is(tp.total, 12_000_600, 'the cluster total keeps a forgotten peer\'s bytes');
  now += 2 * THROUGHPUT_WINDOW_MS;
  t.is(tp.recentBytesPerSec('a'), 0);
});
