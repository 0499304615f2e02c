import test from 'ava';
import { digestOf } from '@shoal/core';
import { AccessCache, type AccessKey } from '../src/access-cache.js';

test('access grants expire after their TTL, are per credential, and the map stays bounded', (t) => {
  let now = 1_000;
  const cache = new AccessCache({ ttlMs: 60_000, maxEntries: 3 }, { now: () => now });
  const key = (authorization: string | undefined, n = 0): AccessKey => ({
    kind: 'blob',
    authorization,
    registry: 'r.example',
    repository: 'a/b',
    digest: digestOf(String(n)),
  });
  const grant = { sizeBytes: 10, headers: {} };

  cache.set(key('Basic abc'), grant);
  t.is(cache.get(key('Basic abc')), grant);
  t.is(cache.get(key('Basic other')), undefined, 'another credential is not covered');
  t.is(cache.get(key(undefined)), undefined, 'nor is an anonymous client');
  t.false(AccessCache.keyOf(key('Basic abc')).includes('Basic abc'), 'the credential itself is not kept');

  now += 59_999;
  t.is(cache.get(key('Basic abc')), grant);
  now += 1;
  t.is(cache.get(key('Basic abc')), undefined, 'expired after 60 s');

  for (let i = 0; i < 10; i++) cache.set(key(undefined, i), grant);
  t.is(cache.size, 3);
  t.is(cache.get(key(undefined, 0)), undefined);
  t.is(cache.get(key(undefined, 9)), grant);
});
