// @ts-check
// `k6/http`: get, head, post and request, synchronous like k6's. The main
// thread performs the request (undici) while this VU's thread waits. Every
// request adds to http_reqs, http_req_duration and http_req_failed (a status
// outside 200–399 or no answer, as k6 counts by default).
import { emit, syncRequest } from './runtime.mjs';

/** k6 hands header names out in canonical form: `docker-content-digest` → `Docker-Content-Digest`. @param {string} name */
function canonical(name) {
  return name.split('-').map((/** @type {string} */ p) => p.slice(0, 1).toUpperCase() + p.slice(1).toLowerCase()).join('-');
}

/**
 * @param {string} method
 * @param {string} url
 * @param {string | null | undefined} body
 * @param {{ headers?: Record<string, string>, responseType?: 'text' | 'binary' | 'none', tags?: Record<string, string>, timeout?: string | number }} [params]
 */
export function request(method, url, body, params = {}) {
  const answer = syncRequest({ method, url, body: body ?? undefined, headers: params.headers ?? {}, responseType: params.responseType ?? 'text' });
  /** @type {Record<string, string>} */
  const headers = {};
  for (const [k, v] of Object.entries(answer.headers ?? {})) headers[canonical(k)] = Array.isArray(v) ? v.join(', ') : String(v);
  const failed = answer.status < 200 || answer.status > 399;
  emit({ type: 'sample', metric: 'http_reqs', kind: 'counter', value: 1 });
  emit({ type: 'sample', metric: 'http_req_duration', kind: 'trend', value: answer.durationMs });
  emit({ type: 'sample', metric: 'http_req_failed', kind: 'rate', value: failed ? 1 : 0 });
  emit({ type: 'sample', metric: 'data_received', kind: 'counter', value: answer.bytes ?? 0 });
  const responseBody = answer.body;
  return {
    url,
    status: answer.status,
    error: answer.error ?? '',
    error_code: answer.error === undefined ? 0 : 1000,
    headers,
    body: responseBody,
    timings: { duration: answer.durationMs },
    json() {
      if (typeof responseBody !== 'string') throw new Error('k6 shim: json() on a body that is not text');
      return JSON.parse(responseBody);
    },
  };
}

/** @param {string} url @param {any} [params] */
export const get = (url, params) => request('GET', url, null, params);
/** @param {string} url @param {any} [params] */
export const head = (url, params) => request('HEAD', url, null, params);
/** @param {string} url @param {string | null} body @param {any} [params] */
export const post = (url, body, params) => request('POST', url, body, params);

export default { request, get, head, post };
