import test from 'ava';
import { digestOf } from '@shoal/core';
import { ManifestCache } from '../src/manifest-cache.js';

const bytes = (n: number, fill: number): Buffer => Buffer.alloc(n, fill);

test('the manifest cache keeps verified entries within its byte budget, evicting the least recently used', (t) => {
  const cache = new ManifestCache({ maxBytes: 300, maxEntryBytes: 150 });
  const a = bytes(100, 1);
  const b = bytes(100, 2);
  const c = bytes(100, 3);
  const d = bytes(100, 4);
  t.true(cache.set(digestOf(a), a, 'x/a'));
  t.true(cache.set(digestOf(b), b, 'x/b'));
  t.true(cache.set(digestOf(c), c, 'x/c'));
  t.is(cache.sizeBytes, 300);
  t.truthy(cache.get(digestOf(a))); // a is now the most recently used
  t.true(cache.set(digestOf(d), d, 'x/d'));
  t.is(cache.get(digestOf(b)), undefined, 'b was the least recently used');
  t.is(cache.get(digestOf(a))?.contentType, 'x/a');
  t.is(cache.size, 3);
  t.true(cache.sizeBytes <= 300);

  t.false(cache.set(digestOf(a), b, 'x/a'), 'bytes that do not hash to the digest are refused');
  const big = bytes(151, 5);
  t.false(cache.set(digestOf(big), big, 'x/big'), 'an entry over the per-entry limit is refused');
  t.is(cache.get(digestOf(big)), undefined);
});
