import type { Digest } from '@shoal/core';

/** Key of the waiters for a whole blob (piece keys are indexes ≥ 0). */
export const COMPLETE = -1;
/** Waiter key for "the whole digest matched" (which comes before `complete`: durable and renamed). */
export const DIGEST_VERIFIED = -2;
/**
 * Waiter key for "piece `index` is verified, or the back-to-source ingest began
 * receiving it" (PieceStoreApi.waitForPieceOrIngest): resolved at both moments.
 */
export function arrivingKey(index: number): number {
  return -3 - index;
}

interface Waiter {
  resolve(): void;
  reject(reason: unknown): void;
}

/**
 * Promises waiting for a piece or a blob, kept per digest and key rather than
 * as one EventEmitter listener each: a blob being streamed to many readers can
 * have thousands of waiters, and each settles in O(1) without scanning others.
 * Memory is bounded by the live waiters: every waiter removes itself (and its
 * abort listener) when it settles, and empty maps are dropped.
 */
export class Waiters {
  private readonly byDigest = new Map<Digest, Map<number, Set<Waiter>>>();

  wait(digest: Digest, key: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(signal.reason);
        return;
      }
      let keys = this.byDigest.get(digest);
      if (keys === undefined) {
        keys = new Map();
        this.byDigest.set(digest, keys);
      }
      let set = keys.get(key);
      if (set === undefined) {
        set = new Set();
        keys.set(key, set);
      }
      const waiters = set;
      const settle = (): void => {
        waiters.delete(waiter);
        if (waiters.size === 0 && keys.get(key) === waiters) keys.delete(key);
        if (keys.size === 0 && this.byDigest.get(digest) === keys) this.byDigest.delete(digest);
        signal?.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        resolve: () => {
          settle();
          resolve();
        },
        reject: (reason) => {
          settle();
          reject(reason);
        },
      };
      const onAbort = (): void => waiter.reject(signal?.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      waiters.add(waiter);
    });
  }

  resolve(digest: Digest, key: number): void {
    const set = this.byDigest.get(digest)?.get(key);
    if (set !== undefined) for (const waiter of [...set]) waiter.resolve();
  }

  /** Settles every waiter of a digest: a complete blob has all its pieces. */
  resolveAll(digest: Digest): void {
    for (const waiter of this.collect(digest)) waiter.resolve();
  }

  rejectAll(digest: Digest, reason: Error): void {
    for (const waiter of this.collect(digest)) waiter.reject(reason);
  }

  rejectEverything(reason: Error): void {
    for (const digest of [...this.byDigest.keys()]) this.rejectAll(digest, reason);
  }

  /** Whether anyone waits for a piece of `digest` or for the whole blob. */
  has(digest: Digest): boolean {
    return this.byDigest.has(digest);
  }

  /** Number of pending waiters (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const keys of this.byDigest.values()) for (const set of keys.values()) n += set.size;
    return n;
  }

  private collect(digest: Digest): Waiter[] {
    const keys = this.byDigest.get(digest);
    if (keys === undefined) return [];
    return [...keys.values()].flatMap((set) => [...set]);
  }
}
