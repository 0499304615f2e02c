import test from 'ava';
import fc from 'fast-check';
import { RangeInvalidError, parseRange } from '../src/index.js';
import { ADVERSARIAL_BUDGET_MS, STRESS_PATTERNS, adversarialInputs, anyString, attempt, describeInput, runs, slowest, tokenString } from './helpers/fuzz.js';

const RANGE_TOKENS = ['bytes=', 'bytes', '=', '-', ',', ' ', '\t', '0', '1', '9', '42', '1000', '99999999999999999999', '1e3', '0x10', '+', 'items=', ';', 'é'];
/** Blob sizes from empty to the largest a blob may be (64 GiB) and past it. */
const size = fc.oneof(fc.constantFrom(0, 1, 2, 1000), fc.nat({ max: 10_000 }), fc.integer({ min: 0, max: 2 ** 40 }));

test('parseRange: any header gives undefined, a range inside [0, size), or a RangeInvalidError', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.oneof(anyString, tokenString(RANGE_TOKENS, 25), tokenString(RANGE_TOKENS, 12).map((s) => `bytes=${s}`)), size, (header, sizeBytes) => {
        const outcome = attempt(() => parseRange(header, sizeBytes));
        if (!outcome.ok) return outcome.error instanceof RangeInvalidError;
        const range = outcome.value;
        if (range === undefined) return true;
        return Number.isSafeInteger(range.start) && Number.isSafeInteger(range.end) && range.start >= 0 && range.start <= range.end && range.end < sizeBytes;
      }),
      runs(15_000),
    ),
  );
});

test('parseRange: a satisfiable single range is returned exactly (end clamped to the size)', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 40 }), fc.nat(), fc.nat(), (sizeBytes, a, b) => {
        const start = a % sizeBytes;
        const end = start + b;
        const range = parseRange(`bytes=${start}-${end}`, sizeBytes);
        const open = parseRange(`bytes=${start}-`, sizeBytes);
        const suffix = parseRange(`bytes=-${b + 1}`, sizeBytes);
        return (
          range?.start === start &&
          range.end === Math.min(end, sizeBytes - 1) &&
          open?.start === start &&
          open.end === sizeBytes - 1 &&
          suffix?.start === Math.max(0, sizeBytes - (b + 1)) &&
          suffix.end === sizeBytes - 1
        );
      }),
      runs(5_000),
    ),
  );
});

test('parseRange: a range starting at or past the size is a RangeInvalidError', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.nat({ max: 2 ** 40 }), fc.nat(), (sizeBytes, extra) => {
        const outcome = attempt(() => parseRange(`bytes=${sizeBytes + extra}-`, sizeBytes));
        return !outcome.ok && outcome.error instanceof RangeInvalidError;
      }),
      runs(2_000),
    ),
  );
});

test('parseRange stays linear on 100k-character adversarial headers', (t) => {
  const worst = slowest(adversarialInputs(['', 'bytes=', 'bytes=0-1,', ' bytes= '], STRESS_PATTERNS, ['', '-', '0-1', '!']), (header) => parseRange(header, 1000));
  t.true(worst.ms < ADVERSARIAL_BUDGET_MS, `took ${worst.ms.toFixed(1)} ms on ${describeInput(worst.input)}`);
});
