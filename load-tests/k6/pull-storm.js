// @ts-check
// Pull storm: every iteration is one node pulling an image the way containerd
// does — resolve the tag (HEAD), fetch the manifest by digest (through an index
// to the platform's manifest), then the config and every layer — and checks the
// SHA-256 of every manifest and blob against its digest.
//
// Blobs go through node proxies (SHOAL_PROXY_URLS, the containerd mirror on each
// node) or straight to peer ports (SHOAL_BLOB_VIA=peer with SHOAL_PEER_URLS and
// SHOAL_TOKEN). VU n uses target n mod count, so VUs spread over the nodes.
//
//   k6 run -e SHOAL_IMAGE=registry.example:5000/app:v2 \
//          -e SHOAL_PROXY_URLS=http://10.0.0.1:65001,http://10.0.0.2:65001 \
//          -e VUS=50 -e ITERATIONS=200 load-tests/k6/pull-storm.js
//
// Environment: SHOAL_IMAGE (required), SHOAL_PROXY_URLS, SHOAL_REGISTRY_URL (manifests
// when no proxy is given; default https://<registry>), SHOAL_BLOB_VIA (proxy|peer),
// SHOAL_PEER_URLS, SHOAL_TOKEN, SHOAL_PLATFORM (linux/amd64), VUS (10), ITERATIONS (VUS),
// DURATION (instead of ITERATIONS), PULL_P95_MS (60000), BLOB_P95_MS (30000),
// MAX_ERROR_RATE (0.01).
import http from 'k6/http';
import { check, fail } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { digestOf, env, envList, envNumber, loadShape, MANIFEST_ACCEPT, nsQuery, parseImage, platformManifest, resolveTag, tokenHeaders } from './lib/shoal.js';

const IMAGE = parseImage(env('SHOAL_IMAGE'));
const PLATFORM = env('SHOAL_PLATFORM', 'linux/amd64');
const PROXIES = __ENV.SHOAL_PROXY_URLS ? envList('SHOAL_PROXY_URLS') : [];
const BLOB_VIA = env('SHOAL_BLOB_VIA', 'proxy');
const PEERS = BLOB_VIA === 'peer' ? envList('SHOAL_PEER_URLS') : [];
const REGISTRY_URL = env('SHOAL_REGISTRY_URL', `https://${IMAGE.registry}`).replace(/\/+$/, '');
if (BLOB_VIA !== 'proxy' && BLOB_VIA !== 'peer') fail(`SHOAL_BLOB_VIA must be proxy or peer, not ${BLOB_VIA}`);
if (BLOB_VIA === 'proxy' && PROXIES.length === 0) fail('SHOAL_PROXY_URLS is required when blobs go through proxies');

export const options = {
  ...loadShape(10, 10),
  thresholds: {
    shoal_pull_duration: [`p(95)<${envNumber('PULL_P95_MS', 60_000)}`],
    shoal_blob_duration: [`p(95)<${envNumber('BLOB_P95_MS', 30_000)}`],
    http_req_failed: [`rate<${envNumber('MAX_ERROR_RATE', 0.01)}`],
    shoal_digest_ok: ['rate==1'],
    checks: ['rate>0.99'],
  },
};

/** Whole image: resolve to last layer, milliseconds. */
const pullDuration = new Trend('shoal_pull_duration', true);
/** One blob, request to last byte, milliseconds. */
const blobDuration = new Trend('shoal_blob_duration', true);
const blobBytes = new Counter('shoal_blob_bytes');
/** Blobs the proxy or peer served from the swarm (X-Shoal-Source other than upstream). */
const fromSwarm = new Rate('shoal_blob_from_swarm');
/** Every manifest and blob matched its digest. */
const digestOk = new Rate('shoal_digest_ok');

/**
 * @param {number} i
 * @param {string[]} list
 */
function pick(list, i) {
  return /** @type {string} */ (list[i % list.length]);
}

/**
 * GET a manifest by digest (or the tag, from the registry) and check it.
 * @param {string} reference
 * @param {string | undefined} proxy through this proxy; undefined: from the registry
 */
function getManifest(reference, proxy) {
  const url = proxy === undefined ? `${REGISTRY_URL}/v2/${IMAGE.repository}/manifests/${reference}` : `${proxy}/v2/${IMAGE.repository}/manifests/${reference}?${nsQuery(IMAGE.registry)}`;
  const res = http.get(url, { headers: { Accept: MANIFEST_ACCEPT }, tags: { name: 'manifest' } });
  const ok = check(res, { 'manifest 200': (r) => r.status === 200 });
  if (!ok || typeof res.body !== 'string') return undefined;
  if (reference.startsWith('sha256:')) {
    const match = digestOf(res.body) === reference;
    digestOk.add(match, { kind: 'manifest' });
    check(match, { 'manifest digest matches': (m) => m });
    if (!match) return undefined;
  }
  const contentType = res.headers['Content-Type'];
  return { manifest: /** @type {import('./lib/shoal.js').Manifest} */ (res.json()), contentType: typeof contentType === 'string' ? contentType : null, digest: res.headers['Docker-Content-Digest'] };
}

/**
 * @param {import('./lib/shoal.js').Descriptor} blob
 * @param {number} vu
 */
function getBlob(blob, vu) {
  const url =
    BLOB_VIA === 'peer'
      ? `${pick(PEERS, vu)}/api/v1/blobs/${blob.digest}?registry=${encodeURIComponent(IMAGE.registry)}&repository=${encodeURIComponent(IMAGE.repository)}&size=${blob.size}`
      : `${pick(PROXIES, vu)}/v2/${IMAGE.repository}/blobs/${blob.digest}?${nsQuery(IMAGE.registry)}`;
  const res = http.get(url, { headers: BLOB_VIA === 'peer' ? tokenHeaders() : {}, responseType: 'binary', tags: { name: 'blob' } });
  blobDuration.add(res.timings.duration);
  if (!check(res, { 'blob 200': (r) => r.status === 200 }) || res.body === null || typeof res.body === 'string') {
    digestOk.add(false, { kind: 'blob' });
    return false;
  }
  const match = digestOf(res.body) === blob.digest && res.body.byteLength === blob.size;
  digestOk.add(match, { kind: 'blob' });
  check(match, { 'blob digest and size match': (m) => m });
  blobBytes.add(res.body.byteLength);
  const source = res.headers['X-Shoal-Source'];
  fromSwarm.add(source !== undefined && source !== 'upstream');
  return match;
}

export default function () {
  const started = Date.now();
  const vu = __VU - 1;
  const proxy = PROXIES.length > 0 ? pick(PROXIES, vu) : undefined;
  let reference = IMAGE.reference;
  if (proxy !== undefined && !reference.startsWith('sha256:')) {
    const digest = resolveTag(proxy, IMAGE);
    if (!check(digest, { 'tag resolved to a digest': (d) => d !== undefined })) return;
    reference = /** @type {string} */ (digest);
  }
  const top = getManifest(reference, proxy);
  if (top === undefined) return;
  let manifest = top.manifest;
  const chosen = platformManifest(manifest, top.contentType, PLATFORM);
  if (chosen !== undefined) {
    const next = getManifest(chosen.digest, proxy);
    if (next === undefined) return;
    manifest = next.manifest;
  }
  const blobs = [...(manifest.config === undefined ? [] : [manifest.config]), ...(manifest.layers ?? [])];
  if (!check(blobs, { 'manifest lists blobs': (b) => b.length > 0 })) return;
  let all = true;
  for (const blob of blobs) all = getBlob(blob, vu) && all;
  if (all) pullDuration.add(Date.now() - started);
}
