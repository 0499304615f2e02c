// @ts-check
// One k6 virtual user (or the setup run) in a worker thread: loads the script
// with the shim's k6 modules, then runs `setup()` once or `default()` for the
// iterations it claims from the shared counter.
import { register } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';

register('./loader.mjs', import.meta.url);

/** @type {{ script: string, env: Record<string, string>, vu: number, role: 'setup' | 'vu', iterations: number, claimed: Int32Array, deadlineMs: number, setupData: unknown }} */
const job = workerData;
const g = /** @type {Record<string, unknown>} */ (globalThis);
g.__ENV = job.env;
g.__VU = job.vu;
g.__ITER = 0;

const script = await import(pathToFileURL(job.script).href);
if (job.role === 'setup') {
  const data = typeof script.setup === 'function' ? script.setup() : undefined;
  parentPort?.postMessage({ type: 'setup', options: JSON.parse(JSON.stringify(script.options ?? {})), data: data === undefined ? undefined : JSON.parse(JSON.stringify(data)) });
} else {
  if (typeof script.default !== 'function') throw new Error(`${job.script} has no default function`);
  for (let iter = 0; ; iter++) {
    if (job.iterations > 0 ? Atomics.add(job.claimed, 0, 1) >= job.iterations : Date.now() >= job.deadlineMs) break;
    g.__ITER = iter;
    const started = performance.now();
    try {
      script.default(job.setupData);
      parentPort?.postMessage({ type: 'sample', metric: 'iterations', kind: 'counter', value: 1 });
    } catch (err) {
      parentPort?.postMessage({ type: 'interrupted', vu: job.vu, iter, error: err instanceof Error ? err.message : String(err) });
    }
    parentPort?.postMessage({ type: 'sample', metric: 'iteration_duration', kind: 'trend', value: performance.now() - started });
  }
}
