import test from 'ava';
import { parseRetryAfter } from '../src/index.js';

test('delay-seconds', (t) => {
  t.is(parseRetryAfter('0'), 0);
  t.is(parseRetryAfter(' 3 '), 3000);
});

test('HTTP-date, relative to now; past dates mean now', (t) => {
  const now = Date.parse('Sun, 06 Nov 1994 08:49:37 GMT');
  t.is(parseRetryAfter('Sun, 06 Nov 1994 08:49:47 GMT', now), 10_000);
  t.is(parseRetryAfter('Sun, 06 Nov 1994 08:49:00 GMT', now), 0);
});

test('absent or garbage: undefined', (t) => {
  t.is(parseRetryAfter(undefined), undefined);
  t.is(parseRetryAfter(''), undefined);
  t.is(parseRetryAfter('-1'), undefined);
  t.is(parseRetryAfter('1.5'), undefined);
  t.is(parseRetryAfter('soon'), undefined);
  t.is(parseRetryAfter('2024-01-01'), undefined);
  t.is(parseRetryAfter('9'.repeat(30)), undefined);
});
