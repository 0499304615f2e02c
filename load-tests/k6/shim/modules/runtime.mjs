// @ts-check
// What the shim's k6 modules share inside one VU (a worker thread): the
// synchronous request channel to the main thread and the metric sink.
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';

/** @typedef {{ type: 'sample', metric: string, kind: 'counter' | 'trend' | 'rate', value: number, check?: string }} Sample */

/** @param {Sample} sample */
export function emit(sample) {
  parentPort?.postMessage(sample);
}

/** @type {import('node:worker_threads').MessagePort} */
const port = workerData.httpPort;

/**
 * Sends one request to the main thread and blocks this thread until it answers
 * (k6's HTTP API is synchronous; Node's is not).
 * @param {object} request
 * @returns {any}
 */
export function syncRequest(request) {
  const signal = new Int32Array(new SharedArrayBuffer(4));
  port.postMessage({ request, signal });
  Atomics.wait(signal, 0, 0);
  const answer = receiveMessageOnPort(port);
  if (answer === undefined) throw new Error('k6 shim: no answer from the main thread');
  return answer.message;
}

/** @param {number} ms */
export function blockFor(ms) {
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
