import test from 'ava';
import { ConfigError } from '@shoal/core';
import { DEFAULT_BODY_IDLE_TIMEOUT_MS, DEFAULT_FIRST_BYTE_TIMEOUT_MS, DEFAULT_MANIFEST_CACHE_BYTES, resolveProxyConfig } from '../src/index.js';

test('proxy config: defaults, frozen, every bad value reported at once', (t) => {
  const config = resolveProxyConfig({});
  t.is(config.firstByteTimeoutMs, DEFAULT_FIRST_BYTE_TIMEOUT_MS);
  t.is(config.bodyIdleTimeoutMs, DEFAULT_BODY_IDLE_TIMEOUT_MS);
  t.is(config.manifestCacheBytes, DEFAULT_MANIFEST_CACHE_BYTES);
  t.true(Object.isFrozen(config));
  t.is(resolveProxyConfig({ firstByteTimeoutMs: 5 }).firstByteTimeoutMs, 5);

  const error = t.throws(() => resolveProxyConfig({ firstByteTimeoutMs: 0, bodyIdleTimeoutMs: 1.5, manifestCacheBytes: -1 }), { instanceOf: ConfigError });
  t.is(error?.problems.length, 3);
});
