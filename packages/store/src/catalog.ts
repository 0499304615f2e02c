import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { EventEmitter } from 'node:events';
import type { Level } from 'level';
import { BlobUnknownError, digestHex, StoreFullError, type Clock, type Digest, type Logger } from '@shoal/core';
import { encodeRecord, setBit, type StoredRecord } from './record.js';
import type { BlobRecord, PieceStoreEvents } from './types.js';
import { noop, type Entry } from './entry.js';
import { FreshPieces } from './fresh-pieces.js';
import { Waiters } from './waiters.js';

/** What the catalog needs from the parts when a blob goes. */
export interface DiscardHooks {
  /** Closes the blob's write descriptor (an unlinked file frees its blocks only once no descriptor holds it). */
  closeWriteHandle(entry: Entry): Promise<void>;
  /** Stops the whole-digest pass of the blob. */
  forgetDigest(entry: Entry): void;
}

/**
 * The blobs the store holds and their records: the one map of entries, the db,
 * the per-digest queue every file and record change runs in, and the discard
 * every part ends a blob with. The other parts (opening, writing, the whole
 * digest, reading, quota) act on entries through it.
 */
export class Catalog {
  readonly log: Logger;
  readonly clock: Clock;
  readonly blobDir: string;
  readonly partialDir: string;
  readonly db: Level<string, StoredRecord>;
  readonly waiters = new Waiters();
  /** The record cache: one entry per blob on disk, so bounded by the disk and the quota. */
  readonly entries = new Map<Digest, Entry>();
  /** Aborted by close: long passes over files stop. */
  readonly closing = new AbortController();
  /** Sum of the sizes of `entries`. */
  private held = 0;
  /** Per-digest queue: db writes, file creation, rename and removal run one at a time per blob. */
  readonly chains = new Map<Digest, Promise<void>>();
  readonly background = new Set<Promise<void>>();
  /** Record writes waiting out their delay (see persist): one per blob at most. */
  private readonly delayedFlushes = new Set<() => void>();
  /** Pieces just verified, in memory for the readers right behind the writer (see fresh-pieces.ts). */
  readonly fresh: FreshPieces;
  private hooks: DiscardHooks | undefined;

  constructor(
    readonly events: EventEmitter<PieceStoreEvents>,
    components: { log: Logger; clock: Clock },
    dir: string,
    db: Level<string, StoredRecord>,
    freshPieceBytes: number,
  ) {
    this.log = components.log;
    this.clock = components.clock;
    this.blobDir = join(dir, 'blobs', 'sha256');
    this.partialDir = join(dir, 'partial', 'sha256');
    this.db = db;
    this.fresh = new FreshPieces(freshPieceBytes);
  }

  /** Set once, by the front, when every part exists. */
  setDiscardHooks(hooks: DiscardHooks): void {
    this.hooks = hooks;
  }

  get closed(): boolean {
    return this.closing.signal.aborted;
  }

  get heldBytes(): number {
    return this.held;
  }

  // --- entries -------------------------------------------------------------

  hold(entry: Entry): void {
    this.entries.set(entry.digest, entry);
    this.held += entry.layout.blobSizeBytes;
  }

  current(digest: Digest): Entry {
    const entry = this.entries.get(digest);
    if (entry === undefined) throw new BlobUnknownError(digest);
    return entry;
  }

  isCurrent(entry: Entry): boolean {
    return this.entries.get(entry.digest) === entry;
  }

  assertCurrent(entry: Entry): void {
    if (!this.isCurrent(entry)) throw entry.discardReason ?? new BlobUnknownError(entry.digest);
  }

  assertOpen(): void {
    if (this.closed) throw new Error('piece store closed');
  }

  blobPath(digest: Digest): string {
    return join(this.blobDir, digestHex(digest));
  }

  partialPath(digest: Digest): string {
    return join(this.partialDir, digestHex(digest));
  }

  // --- the record ----------------------------------------------------------

  touch(entry: Entry): void {
    entry.lastAccessMs = this.clock.now();
    entry.accessDirty = true;
  }

  /** Records hashes learned for unknown pieces; whether any changed. */
  learnHashes(entry: Entry, pieceSha256: ReadonlyArray<string | null>): boolean {
    let changed = false;
    pieceSha256.forEach((sha, index) => {
      if (sha !== null && entry.pieceSha256[index] === null) {
        entry.pieceSha256[index] = sha;
        changed = true;
      }
    });
    if (changed) entry.snapshot = undefined;
    return changed;
  }

  /** Piece `index` hashed to `sha` as expected: readers may have it now (the record follows, see persist). */
  recordVerified(entry: Entry, index: number, sha: string): void {
    this.assertCurrent(entry);
    entry.pieceSha256[index] = sha;
    setBit(entry.verified, index, true);
    entry.verifiedCount++;
    entry.snapshot = undefined;
    entry.lastAccessMs = this.clock.now();
  }

  /** The file is durable in blobs/: the blob is complete. */
  recordComplete(entry: Entry): void {
    entry.complete = true;
    // Read from disk from now on, checked at rest like any complete blob.
    this.fresh.forget(entry);
    entry.snapshot = undefined;
    entry.lastAccessMs = this.clock.now();
  }

  snapshot(entry: Entry): BlobRecord {
    entry.snapshot ??= Object.freeze({
      digest: entry.digest,
      layout: entry.layout,
      pieceSha256: Object.freeze([...entry.pieceSha256]),
      verifiedCount: entry.verifiedCount,
      complete: entry.complete,
    });
    return entry.snapshot;
  }

  /**
   * Writes the record (coalesced: one db write covers every change made before
   * it starts). With `delayMs` the write waits that long first, so that changes
   * arriving meanwhile ride along; a call without a delay, or the store
   * closing, starts a waiting write at once.
   */
  persist(entry: Entry, delayMs = 0): Promise<void> {
    const pending = entry.pendingFlush;
    if (pending !== undefined) {
      if (delayMs === 0) pending.now();
      return pending.done;
    }
    let open: () => void = noop;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let timer: NodeJS.Timeout | undefined;
    const now = (): void => {
      clearTimeout(timer);
      this.delayedFlushes.delete(now);
      open();
    };
    const done = gate.then(() =>
      this.serial(entry.digest, async () => {
        // From here on, changes need another flush; everything before is in this one.
        entry.pendingFlush = undefined;
        if (!this.isCurrent(entry)) return;
        entry.accessDirty = false;
        await this.db.put(entry.digest, encodeRecord(entry));
      }),
    );
    entry.pendingFlush = { done, now };
    if (delayMs > 0 && !this.closed) {
      timer = setTimeout(now, delayMs);
      timer.unref();
      this.delayedFlushes.add(now);
    } else {
      now();
    }
    return done;
  }

  /** Starts every record write still waiting out its delay (the store is closing). */
  flushDelayed(): void {
    for (const now of [...this.delayedFlushes]) now();
  }

  /** Writes the record now (inside the digest's queue already). */
  async putRecord(entry: Entry): Promise<void> {
    await this.db.put(entry.digest, encodeRecord(entry));
    entry.accessDirty = false;
  }

  // --- queues --------------------------------------------------------------

  serial<T>(digest: Digest, task: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(digest) ?? Promise.resolve();
    const run = previous.then(task);
    const tail = run.then(noop, noop);
    this.chains.set(digest, tail);
    void tail.then(() => {
      if (this.chains.get(digest) === tail) this.chains.delete(digest);
    });
    return run;
  }

  /** Background work, awaited by close. Its callers handle their failures; one that slips through is logged, never unhandled. */
  track(work: Promise<void>): void {
    this.background.add(work);
    void work.catch((err: unknown) => this.log.error({ err }, 'background store work failed')).finally(() => this.background.delete(work));
  }

  // --- the end of a blob ---------------------------------------------------

  /**
   * Forgets a blob: record and files go, then its waiters fail and 'discarded'
   * is emitted. `level` false: the caller logged it already.
   */
  async discard(entry: Entry, reason: Error, level: 'warn' | 'info' | false = 'warn'): Promise<void> {
    // Already going: wait until its files are gone, so no caller reports the blob gone while they are still there.
    if (!this.isCurrent(entry)) return entry.discarded;
    const { digest } = entry;
    this.entries.delete(digest);
    this.held -= entry.layout.blobSizeBytes;
    entry.discardReason = reason;
    this.fresh.forget(entry);
    this.hooks?.forgetDigest(entry);
    if (level !== false) this.log[level]({ digest, reason: reason.message }, 'blob discarded');
    entry.discarded = this.serial(digest, async () => {
      // Files first: on a full disk they free the space the db needs to record the
      // deletion. Either order is safe across a crash, as open drops a record whose
      // file is missing and deletes a file that has no record.
      try {
        await this.hooks?.closeWriteHandle(entry);
        await rm(this.partialPath(digest), { force: true });
        await rm(this.blobPath(digest), { force: true });
        await this.db.del(digest);
      } catch (err) {
        this.log.error({ digest, err }, 'could not remove a discarded blob (the next open cleans up)');
      }
      // Inside the queue, so a begin() for the same digest queued behind us cannot see these.
      this.waiters.rejectAll(digest, reason);
      this.events.emit('discarded', digest, reason);
    });
    await entry.discarded;
  }
}

/** ENOSPC / EDQUOT from fs (a `code`) or from level (only in the message), anywhere in the cause chain. */
export function isDiskFull(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; e instanceof Error && depth < 8; depth++) {
    if (e instanceof StoreFullError) return true;
    const { code } = e as NodeJS.ErrnoException;
    if (code === 'ENOSPC' || code === 'EDQUOT') return true;
    if (/\b(ENOSPC|EDQUOT)\b|No space left on device|Disk quota exceeded/i.test(e.message)) return true;
    e = e.cause;
  }
  return false;
}
