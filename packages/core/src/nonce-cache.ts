/**
 * Replay protection for signed requests: every nonce seen within the validity
 * window, bounded in size. When the bound is reached the oldest entries go, and
 * the cache remembers the newest timestamp it has forgotten (`floorMs`): a
 * request stamped at or before it is refused, because its nonce might have been
 * among those forgotten. So a replay is always caught, and a full cache only
 * narrows the window honest requests have (to the last `maxEntries` requests).
 */
export class NonceCache {
  private readonly maxEntries: number;
  /** nonce → timestamp of the request that used it; insertion order ≈ time order. */
  private readonly seen = new Map<string, number>();
  private floor = -Infinity;

  constructor(maxEntries: number) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new RangeError(`nonce cache size ${maxEntries} must be a positive integer`);
    this.maxEntries = maxEntries;
  }

  /** Newest timestamp forgotten for want of room; requests at or before it are refused. */
  get floorMs(): number {
    return this.floor;
  }

  get size(): number {
    return this.seen.size;
  }

  /**
   * Records `nonce` used at `tsMs`; false when it was seen before or is too old
   * to tell. `expiredBeforeMs`: entries stamped before it are outside the
   * validity window and dropped (their requests are refused by time anyway).
   */
  use(nonce: string, tsMs: number, expiredBeforeMs: number): boolean {
    for (const [old, ts] of this.seen) {
      if (ts >= expiredBeforeMs) break;
      this.seen.delete(old);
    }
    if (tsMs <= this.floor || this.seen.has(nonce)) return false;
    this.seen.set(nonce, tsMs);
    while (this.seen.size > this.maxEntries) {
      const [oldest, ts] = this.seen.entries().next().value as [string, number];
      this.seen.delete(oldest);
      if (ts > this.floor) this.floor = ts;
    }
    return true;
  }
}
