import test from 'ava';
import { ConfigError, digestOf } from '@shoal/core';
import { DEFAULT_GRANT_MEMORY_MS, DEFAULT_STALE_IF_ERROR_MS, resolveProxyConfig } from '../src/config.js';
import { ChallengeMemory } from '../src/outage.js';
import { TagMemory, type TagKey } from '../src/tag-memory.js';

const key = (tag = 'v1', accept: string | undefined = 'application/vnd.oci.image.index.v1+json'): TagKey => ({
  registry: 'r.example',
  repository: 'a/b',
  tag,
  accept,
});
const answer = (n: number) => ({ digest: digestOf(`manifest ${n}`), contentType: 'application/vnd.oci.image.manifest.v1+json', sizeBytes: 100 + n });

test('tag memory: per credential, per Accept, expires after maxAgeMs, forgets credentials when the tag moves, bounded', (t) => {
  let now = 0;
  const memory = new TagMemory({ maxAgeMs: 1_000, maxEntries: 3, maxCredentialsPerTag: 2 }, { now: () => now });
  memory.remember(key(), 'Basic alice', answer(1));
  t.deepEqual(memory.recall(key(), 'Basic alice')?.answer, answer(1));
  t.is(memory.recall(key(), 'Basic bob'), undefined, 'another credential');
  t.is(memory.recall(key(), undefined), undefined, 'anonymous');
  t.is(memory.recall(key('v1', 'application/json'), 'Basic alice'), undefined, 'another Accept');

  now = 400;
  memory.remember(key(), undefined, answer(1));
  t.is(memory.recall(key(), 'Basic alice')?.ageMs, 0, 'age counts from the last confirmation');
  now = 1_200;
  t.is(memory.recall(key(), 'Basic alice'), undefined, "alice's own 200 is older than maxAgeMs");
  t.is(memory.recall(key(), undefined)?.ageMs, 800);

  // The tag moves: whoever was answered for the old digest is forgotten.
  memory.remember(key(), 'Basic bob', answer(2));
  t.is(memory.recall(key(), undefined), undefined);
  t.deepEqual(memory.recall(key(), 'Basic bob')?.answer, answer(2));

  // At most 2 credentials per tag, 3 tags.
  memory.remember(key(), 'Basic c', answer(2));
  memory.remember(key(), 'Basic d', answer(2));
  t.is(memory.recall(key(), 'Basic bob'), undefined);
  for (let i = 0; i < 5; i++) memory.remember(key(`t${i}`), undefined, answer(i));
  t.is(memory.size, 3);

  now = 10_000;
  t.is(memory.recall(key('t4'), undefined), undefined, 'expired');
  const disabled = new TagMemory({ maxAgeMs: 0, maxEntries: 3, maxCredentialsPerTag: 2 });
  disabled.remember(key(), undefined, answer(1));
  t.is(disabled.recall(key(), undefined), undefined);
});

test('challenge memory: per repository, expires, bounded', (t) => {
  let now = 0;
  const memory = new ChallengeMemory({ maxAgeMs: 1_000, maxEntries: 2 }, { now: () => now });
  memory.remember('r.example', 'a/b', 'Basic realm="x"');
  t.is(memory.recall('r.example', 'a/b'), 'Basic realm="x"');
  t.is(memory.recall('r.example', 'a/c'), undefined);
  memory.remember('r.example', 'a/c', 'Bearer realm="y"');
  memory.remember('r.example', 'a/d', 'Bearer realm="z"');
  t.is(memory.recall('r.example', 'a/b'), undefined, 'oldest dropped');
  now = 1_001;
  t.is(memory.recall('r.example', 'a/d'), undefined, 'expired');
});

test('proxy config: stale-if-error and grant memory default to 24 h and 1 h, 0 disables, negatives refused', (t) => {
  const config = resolveProxyConfig({});
  t.is(config.staleIfErrorMs, DEFAULT_STALE_IF_ERROR_MS);
  t.is(config.staleIfErrorMs, 24 * 3600 * 1000);
  t.is(config.grantMemoryMs, DEFAULT_GRANT_MEMORY_MS);
  t.is(config.grantMemoryMs, 3600 * 1000);
  t.is(resolveProxyConfig({ staleIfErrorMs: 0, grantMemoryMs: 0 }).grantMemoryMs, 0);
  const error = t.throws(() => resolveProxyConfig({ staleIfErrorMs: -1, grantMemoryMs: 0.5 }), { instanceOf: ConfigError });
  t.is(error?.problems.length, 2);
});
