import test from 'ava';
import fc from 'fast-check';
import { DigestInvalidError, digestHex, isDigest, parseDigest } from '../src/index.js';
import { ADVERSARIAL_BUDGET_MS, STRESS_PATTERNS, adversarialInputs, anyString, attempt, describeInput, hex64, runs, slowest, tokenString } from './helpers/fuzz.js';

const DIGEST_TOKENS = ['sha256:', 'sha512:', 'sha256', ':', 'a', 'f', 'F', '0', '9', 'g', '+', '.', '_', '-', '=', '/', '..', '%', ' ', '\n', 'é'];

test('parseDigest: any text is a valid sha256 digest (returned as is) or a DigestInvalidError', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.oneof(anyString, tokenString(DIGEST_TOKENS, 80), hex64.map((h) => `sha256:${h}`)), (text) => {
        const outcome = attempt(() => parseDigest(text));
        if (!outcome.ok) return outcome.error instanceof DigestInvalidError && !isDigest(text);
        // File names are built from digestHex: it must be exactly 64 lowercase hex characters.
        return outcome.value === text && /^[a-f0-9]{64}$/.test(digestHex(outcome.value));
      }),
      runs(15_000),
    ),
  );
});

test('parseDigest: every sha256 digest parses to itself; a changed character or algorithm does not', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(hex64, fc.nat({ max: 63 }), fc.constantFrom('A', 'g', '/', '.', ' ', ''), (hex, at, replacement) => {
        const valid = `sha256:${hex}`;
        const broken = `sha256:${hex.slice(0, at)}${replacement}${hex.slice(at + 1)}`;
        return parseDigest(valid) === valid && !attempt(() => parseDigest(broken)).ok && !attempt(() => parseDigest(`sha512:${hex}`)).ok;
      }),
      runs(5_000),
    ),
  );
});

test('parseDigest stays linear on 100k-character adversarial inputs', (t) => {
  const worst = slowest(adversarialInputs(['', 'sha256:', 'a+', 'sha256:' + 'a'.repeat(64)], STRESS_PATTERNS, ['', ':', ':a', '!']), parseDigest);
  t.true(worst.ms < ADVERSARIAL_BUDGET_MS, `took ${worst.ms.toFixed(1)} ms on ${describeInput(worst.input)}`);
});
