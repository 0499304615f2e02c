import test from 'ava';
import fc from 'fast-check';
import { ConfigError, envName, flagName, loadConfig, type FlagSpecs } from '../src/index.js';
import { ADVERSARIAL_BUDGET_MS, anyString, attempt, describeInput, runs, slowest } from './helpers/fuzz.js';

/** One flag of every kind, required and optional. */
const SPECS = {
  name: { kind: 'string', help: 'a string' },
  dataDir: { kind: 'path', help: 'a path', default: './data' },
  supernode: { kind: 'url', help: 'a URL', required: true },
  listen: { kind: 'hostPort', help: 'host:port', default: '127.0.0.1:1' },
  pieceSizeBytes: { kind: 'integer', help: 'an integer', min: 1, max: 1000, default: 5 },
  verbose: { kind: 'boolean', help: 'a boolean', default: false },
  peers: { kind: 'urlList', help: 'URLs', default: [] },
  plainHttp: { kind: 'hostPortList', help: 'host:port list', default: [] },
  zones: { kind: 'stringList', help: 'strings' },
} satisfies FlagSpecs;

const KEYS = Object.keys(SPECS) as Array<keyof typeof SPECS>;
const FLAGS = KEYS.map((k) => `--${flagName(k)}`);
const VALUES = ['', 'x', 'http://a', 'https://a:1/', 'ftp://a', 'http://', '127.0.0.1:80', ':80', '[::1]:65535', 'a:99999', '0', '-1', '1001', '12', 'true', 'no', 'YES', 'a,b', ',', 'http://a,http://b', '--', '-', '-x', '='];
const value = fc.oneof(fc.constantFrom(...VALUES), anyString);
const argv = fc.array(fc.oneof(fc.constantFrom(...FLAGS, '--unknown', '-v', '--', '--verbose=false', '--no-verbose'), value, fc.tuple(fc.constantFrom(...FLAGS), value).map(([f, v]) => `${f}=${v}`)), { maxLength: 12 });
const env = fc.dictionary(fc.oneof(fc.constantFrom(...KEYS.map(envName)), fc.string({ maxLength: 8 })), value, { maxKeys: 6 });

function wellTyped(config: Record<string, unknown>): boolean {
  for (const key of KEYS) {
    const v = config[key];
    const kind = SPECS[key].kind;
    if (v === undefined) continue;
    if (kind === 'integer' && !(Number.isSafeInteger(v) && (v as number) >= 1 && (v as number) <= 1000)) return false;
    if (kind === 'boolean' && typeof v !== 'boolean') return false;
    if (kind.endsWith('List') && !(Array.isArray(v) && v.every((s) => typeof s === 'string' && s !== ''))) return false;
    if (['string', 'path', 'url', 'hostPort'].includes(kind) && !(typeof v === 'string' && v !== '')) return false;
  }
  return Object.isFrozen(config) && typeof config.supernode === 'string';
}

test('loadConfig: any argv and environment give a frozen, well-typed config or one ConfigError', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(argv, env, (args, variables) => {
        const outcome = attempt(() => loadConfig(SPECS, args, variables, { positionals: { min: 0, max: 1, names: 'IMAGE' } }));
        if (!outcome.ok) return outcome.error instanceof ConfigError && outcome.error.problems.length > 0;
        return wellTyped(outcome.value.config as Record<string, unknown>);
      }),
      runs(3_000),
    ),
  );
});

test('loadConfig stays linear on 20k-character flag values', (t) => {
  // 20k, not 100k: a list value of 100k commas is 100k items, each checked and
  // reported (linear, but ~4 µs each). A quadratic regex takes seconds at 20k.
  const inputs: string[] = [];
  for (const prefix of ['http://a/', '', '[']) {
    for (const pattern of ['/', 'a', ':', ',', '0', '[']) {
      for (const suffix of ['', 'x', ':1']) inputs.push(prefix + pattern.repeat(20_000) + suffix);
    }
  }
  for (const flag of ['--supernode', '--listen', '--piece-size-bytes', '--peers', '--plain-http', '--verbose']) {
    const worst = slowest(inputs, (input) => loadConfig(SPECS, ['--supernode', 'http://a', `${flag}=${input}`], {}));
    t.true(worst.ms < ADVERSARIAL_BUDGET_MS, `${flag} took ${worst.ms.toFixed(1)} ms on ${describeInput(worst.input)}`);
  }
});
