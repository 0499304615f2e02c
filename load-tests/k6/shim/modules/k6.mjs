// @ts-check
// `k6`: check, fail, sleep.
import { blockFor, emit } from './runtime.mjs';

/**
 * @param {unknown} value
 * @param {Record<string, (value: any) => unknown>} sets
 * @returns {boolean}
 */
export function check(value, sets) {
  let all = true;
  for (const [name, fn] of Object.entries(sets)) {
    const ok = Boolean(fn(value));
    emit({ type: 'sample', metric: 'checks', kind: 'rate', value: ok ? 1 : 0, check: name });
    all = all && ok;
  }
  return all;
}

/** @param {string} [message] @returns {never} */
export function fail(message) {
  throw new Error(message ?? 'fail() called');
}

/** @param {number} seconds */
export function sleep(seconds) {
  blockFor(seconds * 1000);
}

export default { check, fail, sleep };
