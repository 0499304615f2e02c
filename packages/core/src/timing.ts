import { setTimeout as sleep } from 'node:timers/promises';

/** An injectable clock, so schedulers and caches can be tested without waiting. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/**
 * prom-client's event-loop-lag histogram samples with a libuv timer of this period
 * (`eventLoopMonitoringPrecision`). Its default, 10 ms, woke every idle Shoal process 100
 * times a second: 16 idle node agents used 7-8 % of a core (`npm run bench:idle`).
 * @default 1000 ms
 */
export const EVENT_LOOP_MONITORING_PRECISION_MS = 1_000;

/** Resolves after `ms`, or rejects with the signal's reason when aborted. */
export async function delay(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, { signal, ref: false }); // unref: a pending delay does not keep the process alive
  } catch (err) {
    // node:timers/promises rejects with an AbortError; callers compare with the reason they aborted with.
    if (signal?.aborted === true) throw signal.reason;
    throw err;
  }
}

/** Waits `ms` (unref'd), or less when `signal` aborts: resolves either way, for loops that check the signal themselves. */
export async function pause(ms: number, signal: AbortSignal): Promise<void> {
  await delay(ms, signal).catch(() => undefined);
}

/** Full-jitter exponential backoff: attempt 0 → up to baseMs, capped at maxMs. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(maxMs, baseMs * 2 ** attempt));
}

/**
 * Settles like `promise`, or rejects with the signal's reason as soon as it
 * aborts (the promise itself goes on; the caller owns cleaning up after it).
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/**
 * A signal that aborts when `signal` does or `ms` has passed (reason: a
 * TimeoutError, as AbortSignal.timeout gives); call `clear` once done with it.
 * Not `AbortSignal.any([signal, AbortSignal.timeout(ms)])`: on Node 20 a
 * timeout signal that only AbortSignal.any refers to can be garbage collected
 * before it fires, and the combined signal then never times out. Here the
 * timer holds its controller until it fires or is cleared.
 */
export function withDeadline(signal: AbortSignal | undefined, ms: number): { signal: AbortSignal; clear: () => void } {
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new DOMException(`timed out after ${ms} ms`, 'TimeoutError')), ms);
  timer.unref();
  return { signal: signal === undefined ? deadline.signal : AbortSignal.any([signal, deadline.signal]), clear: () => clearTimeout(timer) };
}
