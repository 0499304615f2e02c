// Regression: loadConfig stripped a URL's trailing slashes with `/\/+$/`, which
// V8 retries from every slash of a run: a URL flag ending in 40,000 slashes
// followed by one other character took ~4 s (quadratic) instead of microseconds.
import test from 'ava';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../src/index.js';

const SPECS = { supernode: { kind: 'url', help: 'a URL', required: true } } as const;

test('a URL flag with a long run of slashes is checked in linear time', (t) => {
  for (const url of [`http://a/${'/'.repeat(100_000)}x`, `http://a/x${'/'.repeat(100_000)}`]) {
    const started = performance.now();
    const { config } = loadConfig(SPECS, ['--supernode', url], {});
    const ms = performance.now() - started;
    t.true(ms < 250, `took ${ms.toFixed(1)} ms`);
    t.false(config.supernode.endsWith('/'));
  }
});

test('trailing slashes are still removed, inner ones kept', (t) => {
  t.is(loadConfig(SPECS, ['--supernode', 'http://a:1/b//c///'], {}).config.supernode, 'http://a:1/b//c');
  t.is(loadConfig(SPECS, ['--supernode', 'https://a'], {}).config.supernode, 'https://a');
});
