import { BlobUnknownError, StoreFullError, type Digest, type PieceLayout } from '@shoal/core';
import { isDiskFull, type Catalog } from './catalog.js';
import { noop, type Entry } from './entry.js';

export const DEFAULT_HIGH_WATERMARK = 0.9;
export const DEFAULT_LOW_WATERMARK = 0.75;
/** 10 min: far longer than any piece takes, even from a slow peer. */
export const DEFAULT_PARTIAL_IDLE_MS = 10 * 60 * 1000;

/** A blob's disk-full handling; changed only here. */
export interface QuotaState {
  /** The first disk-full handling of this blob (discard, then eviction): later writers that hit it wait for the same. */
  diskFull: Promise<StoreFullError> | undefined;
}

export function newQuotaState(): QuotaState {
  return { diskFull: undefined };
}

export interface QuotaInit {
  quotaBytes: number | undefined;
  highWatermark: number;
  lowWatermark: number;
  partialIdleMs: number;
}

/** What quota needs from the other parts. */
export interface QuotaParts {
  /** Creates the blob's file and record (Writing.create). */
  create(digest: Digest, layout: PieceLayout): Promise<Entry>;
  /** Someone reads, writes or waits for the blob: it must stay. */
  inUse(entry: Entry): boolean;
}

/**
 * Quota and eviction: admitting a new blob (evicting idle blobs, least
 * recently used first, from the high watermark down to the low one), and a
 * full disk (nothing of the blob is kept, idle blobs make room for what comes next).
 */
export class Quota {
  /** Sizes of blobs admitted under the quota whose record is being created. */
  private reservedBytes = 0;
  /** Eviction passes run one at a time. */
  private evictTail: Promise<void> = Promise.resolve();

  constructor(
    private readonly catalog: Catalog,
    readonly init: QuotaInit,
    private readonly parts: QuotaParts,
  ) {}

  /** Begins a blob once there is room for it; on a full quota or disk nothing of it is kept. */
  async admitAndCreate(digest: Digest, layout: PieceLayout): Promise<Entry> {
    const size = layout.blobSizeBytes;
    let entry: Entry;
    this.reservedBytes += size;
    try {
      await this.admit(digest, size);
      entry = await this.catalog.serial(digest, () => this.parts.create(digest, layout));
    } catch (err) {
      this.reservedBytes -= size;
      if (isDiskFull(err)) throw await this.diskFull(undefined, digest, err, size);
      throw err;
    }
    this.reservedBytes -= size;
    return entry;
  }

  /** At open: the quota may have been lowered since the last run. */
  async enforce(): Promise<void> {
    const quota = this.init.quotaBytes;
    if (quota !== undefined && this.catalog.heldBytes > quota * this.init.highWatermark) await this.evict(quota * this.init.lowWatermark, 'quota');
  }

  /** Called with `size` already reserved: evicts down to the low watermark when usage passed the high one. */
  private async admit(digest: Digest, size: number): Promise<void> {
    const quota = this.init.quotaBytes;
    if (quota === undefined) return;
    const high = quota * this.init.highWatermark;
    // Alone above the high watermark, it would flush the whole cache for itself.
    if (size > high) throw new StoreFullError(`${digest} (${size} bytes) is larger than the cache's high watermark (${Math.floor(high)} bytes)`);
    if (this.usedBytes() > high) await this.evict(quota * this.init.lowWatermark, 'quota');
    if (this.usedBytes() > quota) {
      throw new StoreFullError(`no room for ${digest} (${size} bytes): ${this.catalog.heldBytes} of ${quota} bytes are held by blobs in use`);
    }
  }

  /**
   * Whether a blob may go: nobody reads, writes or waits for it, and a partial
   * one has been left alone long enough to be abandoned.
   */
  private evictable(entry: Entry, nowMs: number): boolean {
    if (this.parts.inUse(entry)) return false;
    return entry.complete || nowMs - entry.lastAccessMs >= this.init.partialIdleMs;
  }

  /** Evicts idle blobs, least recently used first, until usage is at most `targetBytes` or nothing more may go. */
  private evict(targetBytes: number, why: 'quota' | 'disk full'): Promise<void> {
    const run = this.evictTail.then(() => this.evictNow(targetBytes, why));
    this.evictTail = run.catch(noop);
    return run;
  }

  private async evictNow(targetBytes: number, why: 'quota' | 'disk full'): Promise<void> {
    const { catalog } = this;
    if (this.usedBytes() <= targetBytes) return;
    const startMs = catalog.clock.now();
    const candidates = [...catalog.entries.values()].filter((e) => this.evictable(e, startMs)).sort((a, b) => a.lastAccessMs - b.lastAccessMs);
    for (const entry of candidates) {
      if (catalog.closed || this.usedBytes() <= targetBytes) break;
      const nowMs = catalog.clock.now();
      // Checked again right before the (synchronous) removal: a reader may have come since.
      if (!catalog.isCurrent(entry) || !this.evictable(entry, nowMs)) continue;
      const { digest } = entry;
      catalog.log.info(
        { digest, sizeBytes: entry.layout.blobSizeBytes, complete: entry.complete, ageMs: nowMs - entry.lastAccessMs, why },
        'blob evicted',
      );
      await catalog.discard(entry, new BlobUnknownError(digest, { cause: new Error(`evicted (${why})`) }), false);
    }
    if (!catalog.closed && this.usedBytes() > targetBytes) {
      catalog.log.warn(
        { bytes: catalog.heldBytes, targetBytes: Math.floor(targetBytes), quotaBytes: this.init.quotaBytes, why },
        'eviction stopped short: the rest is in use',
      );
    }
  }

  /**
   * A write found no space: nothing of the blob is kept (it is discarded,
   * emitting 'discarded'), idle blobs are evicted so what comes next has room,
   * and the caller gets StoreFullError to stream the bytes through instead.
   */
  diskFull(entry: Entry | undefined, digest: Digest, err: unknown, sizeBytes = entry?.layout.blobSizeBytes ?? 0): Promise<StoreFullError> {
    // Another writer of the blob, or its record's write, found the disk full
    // first (this error may be the StoreFullError it made): its handling, discard
    // and eviction both, is done before this caller reports the blob gone.
    if (entry?.quota.diskFull !== undefined) return entry.quota.diskFull;
    const discards = entry !== undefined && this.catalog.isCurrent(entry) && !entry.complete;
    const handling = this.handleDiskFull(entry, digest, err, sizeBytes);
    if (discards) entry.quota.diskFull = handling;
    return handling;
  }

  private async handleDiskFull(entry: Entry | undefined, digest: Digest, err: unknown, sizeBytes: number): Promise<StoreFullError> {
    const { catalog } = this;
    // Discarded for another reason first: still, its files are gone before the caller hears.
    if (entry !== undefined && !catalog.isCurrent(entry)) await entry.discarded;
    if (err instanceof StoreFullError) return err;
    const message = err instanceof Error ? err.message : String(err);
    const full = new StoreFullError(`no space left to store ${digest}: ${message}`, { cause: err });
    catalog.log.warn({ digest, sizeBytes, err: message }, 'disk full: blob not kept');
    if (entry !== undefined && catalog.isCurrent(entry) && !entry.complete) await catalog.discard(entry, full, false);
    if (!catalog.closed) {
      let target = Math.max(0, this.usedBytes() - sizeBytes);
      if (this.init.quotaBytes !== undefined) target = Math.min(target, this.init.quotaBytes * this.init.lowWatermark);
      await this.evict(target, 'disk full');
    }
    return full;
  }

  /** Held plus admitted: what the quota is checked against. */
  private usedBytes(): number {
    return this.catalog.heldBytes + this.reservedBytes;
  }
}
