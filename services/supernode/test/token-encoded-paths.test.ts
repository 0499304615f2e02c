/**
 * Regression: the token check tested the raw URL's prefix while the router matched the
 * decoded path, so `GET /%61pi/v1/status` answered 200 without the cluster token (and
 * the same trick read private pieces, started back-to-source fetches and ran preheat).
 *
 * Every route, in many spellings, with and without the token: only /healthz, /readyz and
 * /metrics answer without it; everything else, routed or not, answers 401.
 */
import test from 'ava';
import fc from 'fast-check';
import { API_PREFIX, HEADER } from '@shoal/core';
import { pathSpellings, rawRequestStatus } from '@shoal/testkit';
import { startSupernode } from './helpers/fixture.js';

const TOKEN = 'encoded-paths-token-0123456789abcdef';
const DIGEST = `sha256:${'a'.repeat(64)}`;
const ROUTES: ReadonlyArray<[string, string]> = [
  ['GET', `${API_PREFIX}/status`],
  ['POST', `${API_PREFIX}/tasks`],
  ['GET', `${API_PREFIX}/blobs/${DIGEST}/info`],
  ['GET', `${API_PREFIX}/blobs/${DIGEST}/pieces/0`],
  ['POST', `${API_PREFIX}/blobs/${DIGEST}/schedule`],
  ['POST', `${API_PREFIX}/preheat`],
  ['GET', `${API_PREFIX}/preheat/job-1`],
  ['GET', '/nowhere'],
];
const PUBLIC = new Set(['/healthz', '/readyz', '/metrics']);

test('no spelling of a supernode route answers without the token', async (t) => {
  t.timeout(120_000);
  const supernode = await startSupernode({ blobs: [], init: { token: TOKEN } });
  t.teardown(() => supernode.close());

  // The plain routes work with the token, so a 401 below is the token check, not a broken route.
  t.is(await rawRequestStatus(supernode.port, 'GET', `${API_PREFIX}/status`, { [HEADER.token]: TOKEN }), 200);
  t.is(await rawRequestStatus(supernode.port, 'GET', `${API_PREFIX}/status`), 401);
  for (const path of PUBLIC) t.is(await rawRequestStatus(supernode.port, 'GET', path), 200, path);

  const leaks: string[] = [];
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...ROUTES).chain(([method, path]) => pathSpellings(path).map((spelt) => [method, spelt] as const)), async ([method, spelt]) => {
      const status = await rawRequestStatus(supernode.port, method, spelt);
      if (status !== 401 && status !== 400) leaks.push(`${method} ${spelt} → ${status}`);
    }),
    { numRuns: 600, seed: 8_001 },
  );
  t.deepEqual(leaks, []);
});

test('the public routes stay public in other spellings only where they route', async (t) => {
  const supernode = await startSupernode({ blobs: [], init: { token: TOKEN } });
  t.teardown(() => supernode.close());
  // A spelling the router maps to /healthz is /healthz; one it does not map is refused like any other.
  t.is(await rawRequestStatus(supernode.port, 'GET', '/%68ealthz'), 200);
  t.is(await rawRequestStatus(supernode.port, 'GET', '/healthz/x'), 401);
});
