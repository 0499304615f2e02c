import test from 'ava';
import { ConfigError, envName, flagName, loadConfig, splitHostPort, type FlagSpecs } from '../src/index.js';

const specs = {
  peerListen: { kind: 'hostPort', help: 'where peers connect', default: '0.0.0.0:65002' },
  supernode: { kind: 'urlList', help: 'supernode URLs', required: true },
  plainHttp: { kind: 'hostPortList', help: 'plain HTTP registries', default: [] },
  maxConcurrent: { kind: 'integer', help: 'downloads at once', default: 4, min: 1, max: 64 },
  verbose: { kind: 'boolean', help: 'more logs', default: false },
  advertise: { kind: 'url', help: 'how peers reach us' },
} satisfies FlagSpecs;

const SUPERNODE = ['--supernode', 'http://sn:8002'];

test('flag and variable names derive from the key', (t) => {
  t.is(flagName('peerListen'), 'peer-listen');
  t.is(envName('peerListen'), 'SHOAL_PEER_LISTEN');
  t.is(envName('plainHttp'), 'SHOAL_PLAIN_HTTP');
});

test('a flag beats its variable, the variable beats the default', (t) => {
  const env = { SHOAL_PEER_LISTEN: '10.0.0.1:1', SHOAL_MAX_CONCURRENT: '8' };
  const { config } = loadConfig(specs, [...SUPERNODE, '--peer-listen', '127.0.0.1:2'], env);
  t.is(config.peerListen, '127.0.0.1:2');
  t.is(config.maxConcurrent, 8);
  t.is(loadConfig(specs, SUPERNODE, env).config.peerListen, '10.0.0.1:1');
  t.is(loadConfig(specs, SUPERNODE, {}).config.peerListen, '0.0.0.0:65002');
  t.is(loadConfig(specs, SUPERNODE, {}).config.advertise, undefined);
});

test('a list variable is comma-separated; a list flag repeats and takes commas too', (t) => {
  const fromEnv = loadConfig(specs, [], { SHOAL_SUPERNODE: 'http://a:1/, http://b:2', SHOAL_PLAIN_HTTP: 'host1:5000,host2:5000' }).config;
  t.deepEqual(fromEnv.supernode, ['http://a:1', 'http://b:2']);
  t.deepEqual(fromEnv.plainHttp, ['host1:5000', 'host2:5000']);
  const fromFlags = loadConfig(specs, [...SUPERNODE, '--plain-http', 'a:1', '--plain-http', 'b:2,c:3'], { SHOAL_PLAIN_HTTP: 'ignored:1' }).config;
  t.deepEqual(fromFlags.plainHttp, ['a:1', 'b:2', 'c:3']);
  t.deepEqual(loadConfig(specs, SUPERNODE, {}).config.plainHttp, []);
});

test('booleans from flags and variables', (t) => {
  t.true(loadConfig(specs, [...SUPERNODE, '--verbose'], {}).config.verbose);
  t.true(loadConfig(specs, SUPERNODE, { SHOAL_VERBOSE: 'yes' }).config.verbose);
  t.false(loadConfig(specs, SUPERNODE, { SHOAL_VERBOSE: '0' }).config.verbose);
  t.false(loadConfig(specs, SUPERNODE, {}).config.verbose);
});

test('the config is frozen', (t) => {
  const { config } = loadConfig(specs, SUPERNODE, {});
  t.true(Object.isFrozen(config));
});

test('a missing required flag is reported with its variable', (t) => {
  const err = t.throws(() => loadConfig(specs, [], {}), { instanceOf: ConfigError });
  t.is(err?.problems.length, 1);
  t.regex(err?.problems[0] ?? '', /--supernode.*SHOAL_SUPERNODE/);
  t.throws(() => loadConfig(specs, [], { SHOAL_SUPERNODE: ' , ' }), { instanceOf: ConfigError });
});

test('every problem is reported at once', (t) => {
  const err = t.throws(
    () =>
      loadConfig(
        specs,
        ['--peer-listen', 'nope', '--max-concurrent', '0', '--advertise', 'ftp://x', '--bogus', 'extra'],
        { SHOAL_PLAIN_HTTP: 'good:1,bad', SHOAL_VERBOSE: 'maybe' },
      ),
    { instanceOf: ConfigError },
  );
  const problems = err?.problems ?? [];
  t.true(problems.some((p) => p.includes('--bogus')), 'unknown flag');
  t.true(problems.some((p) => p.startsWith('--peer-listen')), 'bad host:port');
  t.true(problems.some((p) => p.startsWith('--max-concurrent') && p.includes('≥ 1')), 'integer bound');
  t.true(problems.some((p) => p.startsWith('--advertise')), 'bad url');
  t.true(problems.some((p) => p.startsWith('SHOAL_PLAIN_HTTP')), 'bad list item');
  t.true(problems.some((p) => p.startsWith('SHOAL_VERBOSE')), 'bad boolean');
  t.true(problems.some((p) => p.includes('--supernode')), 'required');
  t.is(problems.length, 7, problems.join('\n'));
});

// Regression: one unknown flag made the strict parse give up, hiding every other flag
// problem and reporting flags that were given (here --supernode) as missing.
test('an unknown flag does not hide the other flags', (t) => {
  const err = t.throws(() => loadConfig(specs, [...SUPERNODE, '--bogus', '--max-concurrent', '0'], {}), { instanceOf: ConfigError });
  t.deepEqual(
    err?.problems.map((p) => p.split(/[ :]/)[0]),
    [`Unknown`, '--max-concurrent'],
    err?.problems.join('\n'),
  );
});

test('positionals are counted', (t) => {
  const options = { positionals: { min: 1, max: 1, names: 'IMAGE' } };
  t.deepEqual(loadConfig(specs, [...SUPERNODE, 'alpine'], {}, options).positionals, ['alpine']);
  t.throws(() => loadConfig(specs, SUPERNODE, {}, options), { instanceOf: ConfigError, message: /IMAGE/ });
  t.throws(() => loadConfig(specs, [...SUPERNODE, 'a', 'b'], {}, options), { instanceOf: ConfigError, message: /unexpected/ });
});

test('splitHostPort', (t) => {
  t.deepEqual(splitHostPort('127.0.0.1:65001'), { host: '127.0.0.1', port: 65001 });
  t.deepEqual(splitHostPort(':8002'), { host: '0.0.0.0', port: 8002 });
  t.deepEqual(splitHostPort('[::1]:5000'), { host: '::1', port: 5000 });
  for (const bad of ['host', 'host:99999', 'a:b:1', 'host:']) t.throws(() => splitHostPort(bad), undefined, bad);
});
