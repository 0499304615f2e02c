/**
 * Shared pieces of the core fuzz tests: a fixed seed (CI explores the same
 * inputs every run; change it on purpose to explore others), string
 * arbitraries that reach past ASCII, and the one property every parser of
 * untrusted text must have: it returns a value or throws a ShoalError, and
 * does so quickly even for huge adversarial inputs.
 */
import fc from 'fast-check';
import { performance } from 'node:perf_hooks';
import { ShoalError } from '../../src/index.js';

/** Seed of every fuzz property in this package. */
export const FUZZ_SEED = 20_240_517;

/** fast-check parameters: fixed seed, the given number of runs. */
export function runs(numRuns: number): fc.Parameters<unknown> {
  return { seed: FUZZ_SEED, numRuns };
}

/** Any UTF-16 code unit, lone surrogates included (URLs and headers can carry them once decoded). */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));

/** Strings of every kind: printable, control characters, astral planes, broken surrogates. */
export const anyString = fc.oneof(
  fc.string({ unit: 'binary-ascii', maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.string({ unit: 'grapheme', maxLength: 100 }),
  fc.string({ unit: codeUnit, maxLength: 200 }),
);

/** Strings made of tokens that matter to a grammar (so the fuzzer gets past the first check). */
export function tokenString(tokens: readonly string[], maxTokens = 30): fc.Arbitrary<string> {
  return fc.array(fc.oneof(fc.constantFrom(...tokens), anyString.map((s) => s.slice(0, 3))), { maxLength: maxTokens }).map((parts) => parts.join(''));
}

/** The lowercase hex of 32 random bytes. */
export const hex64 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => Buffer.from(bytes).toString('hex'));

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: ShoalError };

/**
 * Runs a parser; a ShoalError is a valid answer, anything else thrown
 * (TypeError, URIError, RangeError...) is rethrown so the property fails.
 */
export function attempt<T>(parse: () => T): Outcome<T> {
  try {
    return { ok: true, value: parse() };
  } catch (error) {
    if (error instanceof ShoalError) return { ok: false, error };
    throw error;
  }
}

/**
 * Longest a single parse of a 100k-character input may take. Linear parsers
 * need well under 10 ms; catastrophic backtracking needs seconds to hours.
 */
export const ADVERSARIAL_BUDGET_MS = 250;

/** Length of the adversarial inputs. */
export const ADVERSARIAL_LENGTH = 100_000;

/**
 * Long inputs built to make regular expressions backtrack: a prefix the
 * grammar accepts, one pattern repeated to ADVERSARIAL_LENGTH characters,
 * then a suffix that makes the whole thing fail (or succeed) at the last
 * character.
 */
export function adversarialInputs(prefixes: readonly string[], patterns: readonly string[], suffixes: readonly string[]): string[] {
  const out: string[] = [];
  for (const prefix of prefixes) {
    for (const pattern of patterns) {
      const body = pattern.repeat(Math.ceil(ADVERSARIAL_LENGTH / pattern.length)).slice(0, ADVERSARIAL_LENGTH);
      for (const suffix of suffixes) out.push(prefix + body + suffix);
    }
  }
  return out;
}

/** Patterns that stress the character classes and quantifiers of Shoal's grammars. */
export const STRESS_PATTERNS = [
  'a',
  'A',
  '0',
  '/',
  'a/',
  'a-',
  'a.',
  'a_',
  'a__',
  '-',
  '--a',
  '.',
  '%',
  '%2',
  '%zz',
  '%E0%A4',
  ':',
  'a:',
  '0-',
  '0-,',
  ' ',
  '\t',
  ',',
  '[',
  '{',
  '"',
  '\\',
  '@',
  'é',
  '\u{1F600}',
  '\ud800',
  '\u0000',
  '\r\n',
] as const;

/**
 * Calls `parse` on each input; returns the slowest call so a test can bound it.
 * A call over a tenth of the budget is timed again (up to three times, the
 * fastest kept): a GC pause or a busy CI machine is noise, backtracking is
 * slow every time.
 */
export function slowest(inputs: readonly string[], parse: (input: string) => unknown): { ms: number; input: string } {
  let worst = { ms: 0, input: '' };
  for (const input of inputs) {
    let ms = Infinity;
    for (let attemptNo = 0; attemptNo < 3 && ms > ADVERSARIAL_BUDGET_MS / 10; attemptNo++) {
      const started = performance.now();
      attempt(() => parse(input));
      ms = Math.min(ms, performance.now() - started);
    }
    if (ms > worst.ms) worst = { ms, input };
  }
  return worst;
}

/** A short description of a long input, for assertion messages. */
export function describeInput(input: string): string {
  return `${JSON.stringify(input.slice(0, 40))}… (${input.length} chars)`;
}
