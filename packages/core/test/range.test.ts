import test from 'ava';
import { RangeInvalidError, parseRange } from '../src/index.js';

test('no header or an ignorable header means the whole body', (t) => {
  t.is(parseRange(undefined, 1000), undefined);
  for (const header of ['items=0-1', 'bytes=abc', 'bytes=5-2', 'bytes=-', 'bytes=0-1,x', 'bytes=', `bytes=${'0-1,'.repeat(300)}0-1`]) {
    t.is(parseRange(header, 1000), undefined, header);
  }
});

test('a plain range, clamped to the size', (t) => {
  t.deepEqual(parseRange('bytes=0-99', 1000), { start: 0, end: 99 });
  t.deepEqual(parseRange('bytes=10-10', 1000), { start: 10, end: 10 });
  t.deepEqual(parseRange('bytes=900-5000', 1000), { start: 900, end: 999 });
  t.deepEqual(parseRange(' bytes= 1-2 ', 1000), { start: 1, end: 2 });
});

test('suffix ranges', (t) => {
  t.deepEqual(parseRange('bytes=-100', 1000), { start: 900, end: 999 });
  t.deepEqual(parseRange('bytes=-5000', 1000), { start: 0, end: 999 });
});

test('open-ended ranges', (t) => {
  t.deepEqual(parseRange('bytes=500-', 1000), { start: 500, end: 999 });
  t.deepEqual(parseRange('bytes=0-', 1), { start: 0, end: 0 });
});

test('several ranges merge into one covering range', (t) => {
  t.deepEqual(parseRange('bytes=0-9,20-29', 1000), { start: 0, end: 29 });
  t.deepEqual(parseRange('bytes=500-, 0-10', 1000), { start: 0, end: 999 });
  t.deepEqual(parseRange('bytes=-10,100-200', 1000), { start: 100, end: 999 });
  // Unsatisfiable parts are skipped when another part is satisfiable.
  t.deepEqual(parseRange('bytes=2000-3000,0-1', 1000), { start: 0, end: 1 });
});

test('nothing satisfiable is a 416', (t) => {
  for (const [header, size] of [
    ['bytes=1000-', 1000],
    ['bytes=1000-2000', 1000],
    ['bytes=-0', 1000],
    ['bytes=0-', 0],
    ['bytes=-1', 0],
    ['bytes=5000-,6000-7000', 1000],
  ] as const) {
    const err = t.throws(() => parseRange(header, size), { instanceOf: RangeInvalidError }, header);
    t.is(err?.statusCode, 416);
  }
});
