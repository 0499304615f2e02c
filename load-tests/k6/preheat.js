// @ts-check
// Preheat API load: each iteration starts a preheat job on the supernode
// (POST /api/v1/preheat) and polls it (GET /api/v1/preheat/:id) until it is
// done or failed. VUs run jobs concurrently; the supernode fetches each blob
// from the registry once however many jobs name it.
//
//   k6 run -e SHOAL_SUPERNODE_URL=http://shoal-supernode:8002 -e SHOAL_TOKEN=$(cat token) \
//          -e SHOAL_IMAGES=registry.example:5000/app:v2 -e SHOAL_NODES=all \
//          -e VUS=10 -e ITERATIONS=30 load-tests/k6/preheat.js
//
// Environment: SHOAL_SUPERNODE_URL, SHOAL_IMAGES (required; comma-separated, used in turn),
// SHOAL_TOKEN, SHOAL_NODES (unset: the supernode's cache only; `all` or node names),
// SHOAL_PLATFORMS (comma-separated), VUS (5), ITERATIONS (VUS × 2), DURATION,
// POLL_INTERVAL_S (1), JOB_TIMEOUT_S (600), PREHEAT_P95_MS (120000), MAX_ERROR_RATE (0.01).
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Rate, Trend } from 'k6/metrics';
import { env, envList, envNumber, loadShape, tokenHeaders } from './lib/shoal.js';

const SUPERNODE = env('SHOAL_SUPERNODE_URL').replace(/\/+$/, '');
const IMAGES = envList('SHOAL_IMAGES');
const NODES = __ENV.SHOAL_NODES === undefined || __ENV.SHOAL_NODES === '' ? undefined : __ENV.SHOAL_NODES === 'all' ? 'all' : envList('SHOAL_NODES');
const PLATFORMS = __ENV.SHOAL_PLATFORMS === undefined || __ENV.SHOAL_PLATFORMS === '' ? undefined : envList('SHOAL_PLATFORMS');
const POLL_S = envNumber('POLL_INTERVAL_S', 1);
const TIMEOUT_MS = envNumber('JOB_TIMEOUT_S', 600) * 1000;

export const options = {
  ...loadShape(5, 10),
  thresholds: {
    shoal_preheat_duration: [`p(95)<${envNumber('PREHEAT_P95_MS', 120_000)}`],
    shoal_preheat_ok: [`rate>${1 - envNumber('MAX_ERROR_RATE', 0.01)}`],
    http_req_failed: [`rate<${envNumber('MAX_ERROR_RATE', 0.01)}`],
  },
};

/** Start to done, milliseconds. */
const preheatDuration = new Trend('shoal_preheat_duration', true);
/** Jobs that ended done (not failed, not timed out). */
const preheatOk = new Rate('shoal_preheat_ok');
const jobBytes = new Trend('shoal_preheat_bytes');

export default function () {
  const image = /** @type {string} */ (IMAGES[(__VU + __ITER) % IMAGES.length]);
  const started = Date.now();
  const body = JSON.stringify({ image, ...(NODES === undefined ? {} : { nodes: NODES }), ...(PLATFORMS === undefined ? {} : { platforms: PLATFORMS }) });
  const res = http.post(`${SUPERNODE}/api/v1/preheat`, body, { headers: tokenHeaders({ 'Content-Type': 'application/json' }), tags: { name: 'preheat-start' } });
  if (!check(res, { 'preheat accepted (202)': (r) => r.status === 202 })) {
    preheatOk.add(false);
    return;
  }
  const id = /** @type {{ id: string }} */ (res.json()).id;
  /** @type {{ state: string, bytesTotal: number, message?: string }} */
  let job = { state: 'running', bytesTotal: 0 };
  while (job.state === 'running' && Date.now() - started < TIMEOUT_MS) {
    sleep(POLL_S);
    const poll = http.get(`${SUPERNODE}/api/v1/preheat/${id}`, { headers: tokenHeaders(), tags: { name: 'preheat-poll' } });
    if (!check(poll, { 'preheat job readable': (r) => r.status === 200 })) break;
    job = /** @type {typeof job} */ (poll.json());
  }
  const done = job.state === 'done';
  check(job, { 'preheat job done': () => done });
  preheatOk.add(done);
  if (done) {
    preheatDuration.add(Date.now() - started);
    jobBytes.add(job.bytesTotal);
  }
}
