import test from 'ava';
import { UpstreamError } from '@shoal/core';
import { DEFAULT_TOKEN_EXPIRES_IN_SECONDS, MAX_TOKEN_RESPONSE_BYTES, parseTokenResponse } from '../src/index.js';

test('token or access_token, expires_in with a default', (t) => {
  t.deepEqual(parseTokenResponse('{"token":"abc","expires_in":300}'), { token: 'abc', expiresInSeconds: 300 });
  t.deepEqual(parseTokenResponse('{"access_token":"xyz"}'), { token: 'xyz', expiresInSeconds: DEFAULT_TOKEN_EXPIRES_IN_SECONDS });
  t.deepEqual(parseTokenResponse('{"token":"","access_token":"xyz","expires_in":-5}'), { token: 'xyz', expiresInSeconds: 60 });
});

test('refuses what cannot be a token', (t) => {
  for (const body of ['', 'null', '[]', '"abc"', '{}', '{"token":5}', '{"token":"a b"}', '{"token":"a\\r\\nX-Evil: 1"}']) {
    t.throws(() => parseTokenResponse(body), { instanceOf: UpstreamError }, body);
  }
  t.throws(() => parseTokenResponse(`{"token":"${'a'.repeat(MAX_TOKEN_RESPONSE_BYTES)}"}`), { instanceOf: UpstreamError });
});
