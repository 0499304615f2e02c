import test from 'ava';
import { findChallenge, parseWwwAuthenticate } from '../src/index.js';

test('Bearer challenge with quoted params (docker.io form)', (t) => {
  const [c] = parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"');
  t.deepEqual(c, {
    scheme: 'bearer',
    params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' },
  });
});

test('Basic challenge, case-insensitive scheme and names', (t) => {
  t.deepEqual(parseWwwAuthenticate('basic Realm="Registry Realm"'), [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
});

test('several challenges, commas inside quotes, escapes, unquoted values, odd spacing', (t) => {
  const cs = parseWwwAuthenticate('Basic realm="a, b", Bearer  realm = "https://x/t" , scope="repository:a:pull,push" ,error=insufficient_scope, service="say \\"hi\\""');
  t.is(cs.length, 2);
  t.deepEqual(cs[0], { scheme: 'basic', params: { realm: 'a, b' } });
  t.deepEqual(findChallenge(cs, 'BEARER')?.params, {
    realm: 'https://x/t',
    scope: 'repository:a:pull,push',
    error: 'insufficient_scope',
    service: 'say "hi"',
  });
});

test('token68 and bare schemes', (t) => {
  t.deepEqual(parseWwwAuthenticate('Negotiate abc+/==, Bearer'), [
    { scheme: 'negotiate', params: {}, token68: 'abc+/==' },
    { scheme: 'bearer', params: {} },
  ]);
});

test('malformed input: returns what parsed before the damage, never throws', (t) => {
  t.deepEqual(parseWwwAuthenticate(undefined), []);
  t.deepEqual(parseWwwAuthenticate(''), []);
  t.deepEqual(parseWwwAuthenticate('Bearer realm="unterminated'), [{ scheme: 'bearer', params: {} }]);
  t.deepEqual(parseWwwAuthenticate('"quoted" realm=x'), []);
  t.deepEqual(parseWwwAuthenticate(`Bearer realm="${'x'.repeat(10_000)}"`), []);
  const proto = parseWwwAuthenticate('Bearer __proto__="x", realm="r"');
  t.is(proto[0]?.params.realm, 'r');
  t.is(Object.getPrototypeOf(proto[0]?.params), Object.prototype);
});
