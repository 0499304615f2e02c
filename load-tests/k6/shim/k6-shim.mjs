#!/usr/bin/env node
// @ts-check
// A k6 SHIM, not k6: runs the scripts in load-tests/k6 under Node so CI can
// exercise their logic against a real local swarm where no k6 binary exists.
// It implements only what those scripts use:
//   k6: check, fail, sleep · k6/http: get, head, post, request (headers,
//   responseType text|binary, canonical response header names, timings.duration,
//   json()) · k6/metrics: Counter, Rate, Trend · k6/crypto: sha256 hex ·
//   globals __ENV, __VU, __ITER · lifecycle: options, setup(), default(data) ·
//   options vus + iterations (shared-iterations) or vus + duration · thresholds
//   on avg, min, max, med, p(N), count, rate with < <= > >= == !=.
// Each VU is a worker thread; requests run on the main thread (undici) while the
// VU blocks, as k6's synchronous API needs. Exit codes follow k6: 0 passed,
// 99 a threshold failed, 107 the script failed to start.
//
//   node load-tests/k6/shim/k6-shim.mjs run [-e NAME=value]... [--vus N] [--iterations N] SCRIPT
import { Worker } from 'node:worker_threads';
import { MessageChannel } from 'node:worker_threads';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';

/** Samples kept per trend (a shim run is short); later ones are dropped from percentiles. */
const MAX_TREND_SAMPLES = 100_000;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    env: { type: 'string', short: 'e', multiple: true, default: [] },
    vus: { type: 'string' },
    iterations: { type: 'string' },
    duration: { type: 'string' },
    quiet: { type: 'boolean', short: 'q', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help || positionals[0] !== 'run' || positionals.length !== 2) {
  process.stdout.write('usage: k6-shim.mjs run [-e NAME=value]... [--vus N] [--iterations N | --duration 30s] SCRIPT\n(a shim for CI, not k6: see load-tests/k6/shim/k6-shim.mjs for what it implements)\n');
  process.exit(values.help ? 0 : 2);
}
const script = resolve(/** @type {string} */ (positionals[1]));
/** @type {Record<string, string>} */
const env = {};
for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
for (const pair of /** @type {string[]} */ (values.env)) {
  const eq = pair.indexOf('=');
  if (eq <= 0) throw new Error(`-e ${pair}: expected NAME=value`);
  env[pair.slice(0, eq)] = pair.slice(eq + 1);
}

/** @typedef {{ kind: 'counter' | 'trend' | 'rate', count: number, sum: number, values: number[], min: number, max: number }} Agg */
/** @type {Map<string, Agg>} */
const metrics = new Map();
/** @type {Map<string, { passes: number, fails: number }>} */
const checks = new Map();
let interrupted = 0;

/** @param {{ metric: string, kind: 'counter' | 'trend' | 'rate', value: number, check?: string }} s */
function record(s) {
  let m = metrics.get(s.metric);
  if (m === undefined) {
    m = { kind: s.kind, count: 0, sum: 0, values: [], min: Infinity, max: -Infinity };
    metrics.set(s.metric, m);
  }
  m.count++;
  m.sum += s.value;
  m.min = Math.min(m.min, s.value);
  m.max = Math.max(m.max, s.value);
  if (s.kind === 'trend' && m.values.length < MAX_TREND_SAMPLES) m.values.push(s.value);
  if (s.check !== undefined) {
    const c = checks.get(s.check) ?? { passes: 0, fails: 0 };
    if (s.value === 1) c.passes++;
    else c.fails++;
    checks.set(s.check, c);
  }
}

/** Performs one VU request on this thread and wakes the VU. */
async function perform(/** @type {any} */ req) {
  const started = performance.now();
  try {
    const res = await request(req.url, { method: req.method, headers: req.headers, body: req.body });
    let body = null;
    let bytes = 0;
    if (req.responseType === 'none' || req.method === 'HEAD') {
      await res.body.dump();
    } else {
      const buf = Buffer.from(await res.body.arrayBuffer());
      bytes = buf.length;
      body = req.responseType === 'binary' ? buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) : buf.toString('utf8');
    }
    return { status: res.statusCode, headers: res.headers, body, bytes, durationMs: performance.now() - started };
  } catch (err) {
    return { status: 0, headers: {}, body: null, bytes: 0, durationMs: performance.now() - started, error: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * @param {object} data
 * @returns {Promise<{ options?: any, data?: unknown } | undefined>} the setup message (role setup), or undefined
 */
function runWorker(data) {
  const { port1, port2 } = new MessageChannel();
  port1.on('message', ({ request: req, signal }) => {
    void perform(req).then((answer) => {
      port1.postMessage(answer, answer.body instanceof ArrayBuffer ? [answer.body] : []);
      Atomics.store(signal, 0, 1);
      Atomics.notify(signal, 0);
    });
  });
  return new Promise((resolveRun, rejectRun) => {
    /** @type {{ options?: any, data?: unknown } | undefined} */
    let setup;
    const worker = new Worker(new URL('./vu.mjs', import.meta.url), { workerData: { ...data, httpPort: port2 }, transferList: [port2] });
    worker.on('message', (m) => {
      if (m.type === 'sample') record(m);
      else if (m.type === 'setup') setup = m;
      else if (m.type === 'interrupted') {
        interrupted++;
        process.stderr.write(`VU ${m.vu} iteration ${m.iter} interrupted: ${m.error}\n`);
      }
    });
    worker.on('error', rejectRun);
    worker.on('exit', (code) => {
      port1.close();
      if (code === 0) resolveRun(setup);
      else rejectRun(new Error(`VU worker exited with ${code}`));
    });
  });
}

/** @param {string} text e.g. 30s, 2m, 1m30s */
function durationMs(text) {
  let ms = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[/** @type {'ms'|'s'|'m'|'h'} */ (m[2])];
  if (ms <= 0) throw new Error(`duration ${text}: expected e.g. 30s or 1m`);
  return ms;
}

/** @param {Agg} m @param {string} agg */
function aggregate(m, agg) {
  const p = /^p\((\d+(?:\.\d+)?)\)$/.exec(agg);
  const sorted = () => [...m.values].sort((a, b) => a - b);
  const pct = (/** @type {number} */ q) => {
    const v = sorted();
    if (v.length === 0) return 0;
    return /** @type {number} */ (v[Math.min(v.length - 1, Math.max(0, Math.ceil((q / 100) * v.length) - 1))]);
  };
  if (p !== null) return pct(Number(p[1]));
  switch (agg) {
    case 'avg': return m.count === 0 ? 0 : m.sum / m.count;
    case 'min': return m.count === 0 ? 0 : m.min;
    case 'max': return m.count === 0 ? 0 : m.max;
    case 'med': return pct(50);
    case 'count': return m.kind === 'counter' ? m.sum : m.count;
    case 'rate': return m.kind === 'rate' ? (m.count === 0 ? 0 : m.sum / m.count) : m.sum / Math.max(1e-9, elapsedS);
    case 'value': return m.max;
    default: throw new Error(`threshold aggregation ${agg} is not implemented by the shim`);
  }
}

/** @param {string} name @param {string} expr */
function evaluate(name, expr) {
  const t = /^\s*([a-z]+(?:\(\d+(?:\.\d+)?\))?)\s*(<=|>=|===|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/.exec(expr);
  if (t === null) throw new Error(`threshold ${name}: ${expr} does not parse`);
  const [, agg, op, limitText] = t;
  const m = metrics.get(name) ?? { kind: 'rate', count: 0, sum: 0, values: [], min: 0, max: 0 };
  const actual = aggregate(/** @type {Agg} */ (m), /** @type {string} */ (agg));
  const limit = Number(limitText);
  const ok = { '<': actual < limit, '<=': actual <= limit, '>': actual > limit, '>=': actual >= limit, '==': actual === limit, '===': actual === limit, '!=': actual !== limit }[/** @type {string} */ (op)];
  return { ok: Boolean(ok), actual };
}

let elapsedS = 0;
const t0 = performance.now();
/** @type {{ options?: any, data?: unknown } | undefined} */
let setup;
try {
  setup = await runWorker({ script, env, vu: 0, role: 'setup', iterations: 0, claimed: new Int32Array(new SharedArrayBuffer(4)), deadlineMs: 0, setupData: undefined });
} catch (err) {
  process.stderr.write(`script failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(107);
}
const options = setup?.options ?? {};
const vus = Number(values.vus ?? options.vus ?? 1);
const duration = values.duration ?? (values.iterations === undefined ? options.duration : undefined);
const iterations = duration === undefined ? Number(values.iterations ?? options.iterations ?? vus) : 0;
const claimed = new Int32Array(new SharedArrayBuffer(4));
const deadlineMs = duration === undefined ? 0 : Date.now() + durationMs(duration);
const started = performance.now();
await Promise.all(Array.from({ length: vus }, (_, i) => runWorker({ script, env, vu: i + 1, role: 'vu', iterations, claimed, deadlineMs, setupData: setup?.data })));
elapsedS = (performance.now() - started) / 1000;

// Summary, in k6's spirit.
const lines = [`k6 SHIM run of ${script}: ${vus} VUs, ${duration === undefined ? `${iterations} iterations` : duration}, ${elapsedS.toFixed(1)} s (${((performance.now() - t0) / 1000).toFixed(1)} s with setup)`];
for (const [name, c] of checks) lines.push(`  ${c.fails === 0 ? '✓' : '✗'} ${name}: ${c.passes} passed, ${c.fails} failed`);
let failedThresholds = 0;
/** @type {Record<string, string[]>} */
const thresholds = options.thresholds ?? {};
for (const [name, m] of [...metrics].sort(([a], [b]) => a.localeCompare(b))) {
  const stats = m.kind === 'trend'
    ? `avg=${aggregate(m, 'avg').toFixed(2)} min=${aggregate(m, 'min').toFixed(2)} med=${aggregate(m, 'med').toFixed(2)} max=${aggregate(m, 'max').toFixed(2)} p(90)=${aggregate(m, 'p(90)').toFixed(2)} p(95)=${aggregate(m, 'p(95)').toFixed(2)}`
    : m.kind === 'rate' ? `${(100 * aggregate(m, 'rate')).toFixed(2)}% (${m.sum} of ${m.count})` : `${m.sum} (${(m.sum / Math.max(elapsedS, 1e-9)).toFixed(2)}/s)`;
  lines.push(`  ${name.padEnd(28)} ${stats}`);
}
for (const [name, exprs] of Object.entries(thresholds)) {
  for (const expr of exprs) {
    const r = evaluate(name, expr);
    if (!r.ok) failedThresholds++;
    lines.push(`  threshold ${r.ok ? '✓' : '✗'} ${name} ${expr} (actual ${Number.isInteger(r.actual) ? r.actual : r.actual.toFixed(4)})`);
  }
}
if (interrupted > 0) lines.push(`  ${interrupted} iteration(s) interrupted by an error`);
if (!values.quiet) process.stdout.write(`${lines.join('\n')}\n`);
const summary = { vus, iterations, durationS: elapsedS, interrupted, failedThresholds, checks: Object.fromEntries(checks), metrics: Object.fromEntries([...metrics].map(([k, m]) => [k, { kind: m.kind, count: m.count, sum: m.sum }])) };
process.stdout.write(`SHIM_SUMMARY ${JSON.stringify(summary)}\n`);
process.exit(failedThresholds > 0 ? 99 : 0);
