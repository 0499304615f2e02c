import test from 'ava';
import { TokenCache } from '../src/index.js';

test('tokens expire (a little early) and the cache stays bounded', (t) => {
  let now = 0;
  const cache = new TokenCache({ now: () => now }, 3);
  const key = TokenCache.key('r', 'repository:a:pull', 'h');
  cache.set(key, 't1', 60_000);
  now = 53_000;
  t.is(cache.get(key), 't1');
  now = 54_000;
  t.is(cache.get(key), undefined);

  for (let i = 0; i < 5; i++) cache.set(`k${i}`, `t${i}`, 60_000);
  t.is(cache.size, 3);
  t.is(cache.get('k0'), undefined);
  t.is(cache.get('k4'), 't4');

  cache.delete('k4', 'other');
  t.is(cache.get('k4'), 't4');
  cache.delete('k4', 't4');
  t.is(cache.get('k4'), undefined);
});
