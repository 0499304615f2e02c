// @ts-check
// Concurrent tag resolution through node proxies: many VUs HEAD the same tags
// (containerd's resolve step, which the proxy always passes to the registry:
// tags are mutable) and check that each answer names the digest the tag had
// when the test began.
//
//   k6 run -e SHOAL_PROXY_URLS=http://10.0.0.1:65001 \
//          -e SHOAL_IMAGES=registry.example:5000/app:v2,registry.example:5000/db:15 \
//          -e VUS=100 -e DURATION=1m load-tests/k6/tag-resolution.js
//
// Environment: SHOAL_PROXY_URLS and SHOAL_IMAGES (required, comma-separated), VUS (20),
// ITERATIONS (VUS × 10), DURATION, RESOLVE_P95_MS (500), MAX_ERROR_RATE (0.01).
import { check, fail } from 'k6';
import { Rate, Trend } from 'k6/metrics';
import { envList, envNumber, loadShape, parseImage, resolveTag } from './lib/shoal.js';

const PROXIES = envList('SHOAL_PROXY_URLS');
const IMAGES = envList('SHOAL_IMAGES').map(parseImage);
const shape = loadShape(20, 0);

export const options = {
  ...shape,
  ...(shape.iterations === undefined ? {} : { iterations: Math.max(shape.iterations, shape.vus * envNumber('ITERATIONS_PER_VU', 10)) }),
  thresholds: {
    http_req_duration: [`p(95)<${envNumber('RESOLVE_P95_MS', 500)}`],
    http_req_failed: [`rate<${envNumber('MAX_ERROR_RATE', 0.01)}`],
    shoal_tag_digest_ok: ['rate>0.99'],
  },
};

const resolveDuration = new Trend('shoal_resolve_duration', true);
/** The answer named the digest the tag had at setup. */
const digestOk = new Rate('shoal_tag_digest_ok');

/** The digest of every tag, resolved once through the first proxy. */
export function setup() {
  /** @type {Record<string, string>} */
  const expected = {};
  for (const image of IMAGES) {
    const digest = resolveTag(/** @type {string} */ (PROXIES[0]), image, { phase: 'setup' });
    if (digest === undefined) fail(`${image.registry}/${image.repository}:${image.reference} does not resolve through ${PROXIES[0]}`);
    expected[`${image.registry}/${image.repository}:${image.reference}`] = /** @type {string} */ (digest);
  }
  return expected;
}

/** @param {Record<string, string>} expected */
export default function (expected) {
  const image = /** @type {ReturnType<typeof parseImage>} */ (IMAGES[(__VU + __ITER) % IMAGES.length]);
  const proxy = /** @type {string} */ (PROXIES[__VU % PROXIES.length]);
  const started = Date.now();
  const digest = resolveTag(proxy, image);
  resolveDuration.add(Date.now() - started);
  const ok = digest !== undefined && digest === expected[`${image.registry}/${image.repository}:${image.reference}`];
  digestOk.add(ok);
  check(digest, { 'tag resolved to the expected digest': () => ok });
}
