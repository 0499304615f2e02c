import { createHash, type Hash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { addAbortSignal, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Level } from 'level';
import {
  destroyQuietly,
  abortable,
  BadRequestError,
  BlobUnknownError,
  ConfigError,
  DigestInvalidError,
  DigestMismatchError,
  PieceUnavailableError,
  RangeInvalidError,
  SizeMismatchError,
  StoreFullError,
  digestHex,
  isDigest,
  pieceLayout,
  pieceSpan,
  systemClock,
  type Clock,
  type Digest,
  type Logger,
  type ChunkReader,
  type PieceLayout,
} from '@shoal/core';
import { SHA256_HEX_RE, bitmapBytes, countBits, decodeRecord, encodeRecord, setBit, testBit, type StoredRecord } from './record.js';
import type { BlobRecord, PieceStoreApi, PieceStoreEvents, StoreUsage } from './types.js';
import { COMPLETE, DIGEST_VERIFIED, Waiters } from './waiters.js';
import { RangeReader } from './range-reader.js';

export interface PieceStoreComponents {
  log: Logger;
  /** @default systemClock */
  clock?: Clock;
}

export interface PieceStoreInit {
  /** Root directory; blobs/, partial/ and db/ are created under it. */
  dir: string;
  /**
   * Most bytes of blobs (complete and partial, each at its full size) the
   * store keeps; other files on the disk do not count. Unlimited when absent.
   */
  quotaBytes?: number | undefined;
  /**
   * Fraction of the quota past which beginning a blob evicts idle blobs.
   * @default DEFAULT_HIGH_WATERMARK
   */
  highWatermark?: number | undefined;
  /**
   * Fraction of the quota eviction brings usage down to.
   * @default DEFAULT_LOW_WATERMARK
   */
  lowWatermark?: number | undefined;
  /**
   * A partial blob nobody wrote, read or began for this long is abandoned and
   * may be evicted; before that it is probably between two pieces.
   * @default DEFAULT_PARTIAL_IDLE_MS
   */
  partialIdleMs?: number | undefined;
  /**
   * `'complete'` re-hashes every complete blob at open and drops those that no
   * longer match their digest (slow on a large cache: it reads everything).
   * @default 'none'
   */
  verifyOnOpen?: 'none' | 'complete' | undefined;
}

export const DEFAULT_HIGH_WATERMARK = 0.9;
export const DEFAULT_LOW_WATERMARK = 0.75;
/** 10 min: far longer than any piece takes, even from a slow peer. */
export const DEFAULT_PARTIAL_IDLE_MS = 10 * 60 * 1000;

/** A blob's write descriptor is closed after this long without a writer. */
const WRITE_HANDLE_IDLE_MS = 1_000;
/** 1 MiB: reads for re-hashing the verified prefix; large reads keep the hash loop busy, not the syscalls. */
const HASH_READ_CHUNK_BYTES = 1024 * 1024;
/** Read buffers for hashing back what is on disk, reused: fresh 1 MiB buffers cost page faults and GC. */
const hashBuffers: Buffer[] = [];
const MAX_HASH_BUFFERS = 4;
/**
 * Disk I/O happens in chunks of this size at least (or a piece's end). Network
 * bodies arrive in 16–64 KiB chunks, and one syscall per chunk costs several
 * times the copy itself (measured here: 256 MiB in 64 KiB writes 381 ms, in
 * 1 MiB writes 55 ms). Bounds memory to two chunks per piece being written
 * (one filling while the other is written).
 */
const IO_CHUNK_BYTES = 1024 * 1024;

/** Running SHA-256 over blob bytes [0, bytes); `bytes` is always a piece boundary between advance steps. */
interface Prefix {
  hash: Hash;
  bytes: number;
}

/** In-memory state of one blob: the record cache plus runtime coordination. */
interface Entry {
  /** The assembled bytes matched the digest (set before the datasync and rename that make it `complete`). */
  digestVerified?: boolean;
  readonly digest: Digest;
  readonly layout: PieceLayout;
  readonly pieceSha256: Array<string | null>;
  readonly verified: Uint8Array;
  verifiedCount: number;
  complete: boolean;
  lastAccessMs: number;
  /** lastAccessMs changed since the last db write (written lazily, at the next flush or close). */
  accessDirty: boolean;
  /** Open readBlob/readPiece streams and readers: the blob is being served and must not be evicted. */
  readers: number;
  /** writePiece/ingest calls in progress: the blob must not be evicted. */
  writers: number;
  /**
   * Piece hashes certified by a holder that matched the whole blob: completing
   * needs every piece verified, not a whole-blob hash (prefix is then unused).
   */
  certified: boolean;
  /** The partial file, open for writing while pieces are written (one descriptor per blob, not per piece). */
  writeHandle: Promise<FileHandle> | undefined;
  /** Closes writeHandle once the blob has had no writer for WRITE_HANDLE_IDLE_MS (one timer per blob, not per piece). */
  idleCloseTimer: NodeJS.Timeout | undefined;
  /** Set once the entry is discarded; operations still holding it fail with this. */
  discardReason: Error | undefined;
  /** Settles once a discard has removed the files and record: a second caller waits for it instead of returning early. */
  discarded: Promise<void> | undefined;
  /** The first disk-full handling of this blob (discard, then eviction): later writers that hit it wait for the same. */
  diskFull: Promise<StoreFullError> | undefined;
  /** Undefined once complete. */
  prefix: Prefix | undefined;
  /**
   * Whole-blob hashes already covering [0, end of piece i], computed by a writer
   * that streamed piece i right behind the prefix: the advance step takes them
   * instead of reading the piece back from disk.
   */
  readonly hints: Map<number, Hash>;
  /** Tail of each piece's write queue (absent when nobody writes it). */
  readonly pieceLocks: Map<number, Promise<void>>;
  /** A db write queued but not started yet: later changes ride along with it. */
  pendingFlush: Promise<void> | undefined;
  /** An advance step queued but not started yet. */
  advanceQueued: Promise<void> | undefined;
  advanceTail: Promise<void>;
  snapshot: BlobRecord | undefined;
}

interface IngestState {
  index: number;
  pieceBytes: number;
  totalBytes: number;
  pieceHash: Hash | undefined;
  readonly blobHash: Hash;
  /** Whether this piece's bytes go to disk (false when it was verified before). */
  writes: boolean;
  unlock: (() => void) | undefined;
  /** Writes the current piece (when it `writes`): hashing a chunk overlaps writing the one before. */
  writer: PositionalWriter | undefined;
}


const noop = (): void => {};

/**
 * The piece store: blobs on disk, one level record per blob. See types.ts for
 * the layout and integrity rules.
 */
export class PieceStore extends EventEmitter<PieceStoreEvents> implements PieceStoreApi {
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly blobDir: string;
  private readonly partialDir: string;
  private readonly db: Level<string, StoredRecord>;
  /** The record cache: one entry per blob on disk, so bounded by the disk and the quota. */
  private readonly entries = new Map<Digest, Entry>();
  /** Sum of the sizes of `entries`. */
  private heldBytes = 0;
  /** Sizes of blobs admitted under the quota whose record is being created. */
  private reservedBytes = 0;
  /** Eviction passes run one at a time. */
  private evictTail: Promise<void> = Promise.resolve();
  private readonly quotaBytes: number | undefined;
  private readonly highWatermark: number;
  private readonly lowWatermark: number;
  private readonly partialIdleMs: number;
  private readonly verifyOnOpen: 'none' | 'complete';
  private readonly pendingBegins = new Map<Digest, Promise<Entry>>();
  /** Per-digest queue: db writes, file creation, rename and removal run one at a time per blob. */
  private readonly chains = new Map<Digest, Promise<void>>();
  private readonly background = new Set<Promise<void>>();
  private readonly waiters = new Waiters();
  private readonly closing = new AbortController();
  private closed = false;
  private closePromise: Promise<void> | undefined;

  private constructor(components: PieceStoreComponents, init: PieceStoreInit) {
    super();
    this.log = components.log.child({ module: 'piece-store' });
    this.clock = components.clock ?? systemClock;
    this.quotaBytes = init.quotaBytes;
    this.highWatermark = init.highWatermark ?? DEFAULT_HIGH_WATERMARK;
    this.lowWatermark = init.lowWatermark ?? DEFAULT_LOW_WATERMARK;
    this.partialIdleMs = init.partialIdleMs ?? DEFAULT_PARTIAL_IDLE_MS;
    this.verifyOnOpen = init.verifyOnOpen ?? 'none';
    const problems: string[] = [];
    if (this.quotaBytes !== undefined && (!Number.isSafeInteger(this.quotaBytes) || this.quotaBytes <= 0)) problems.push(`quotaBytes must be a positive integer, not ${this.quotaBytes}`);
    if (!(this.highWatermark > 0 && this.highWatermark <= 1)) problems.push(`highWatermark must be in (0, 1], not ${this.highWatermark}`);
    if (!(this.lowWatermark > 0 && this.lowWatermark <= this.highWatermark)) problems.push(`lowWatermark must be in (0, highWatermark], not ${this.lowWatermark}`);
    if (!(this.partialIdleMs >= 0)) problems.push(`partialIdleMs must be ≥ 0, not ${this.partialIdleMs}`);
    if (this.verifyOnOpen !== 'none' && this.verifyOnOpen !== 'complete') problems.push(`verifyOnOpen must be 'none' or 'complete', not ${String(this.verifyOnOpen)}`);
    if (problems.length > 0) throw new ConfigError(problems);
    this.blobDir = join(init.dir, 'blobs', 'sha256');
    this.partialDir = join(init.dir, 'partial', 'sha256');
    this.db = new Level<string, StoredRecord>(join(init.dir, 'db'), { valueEncoding: 'json' });
  }

  static async open(components: PieceStoreComponents, init: PieceStoreInit): Promise<PieceStore> {
    const store = new PieceStore(components, init);
    await store.load();
    return store;
  }

  /** Pending waitForPiece / waitForComplete promises (for tests and metrics). */
  get waiterCount(): number {
    return this.waiters.size;
  }

  get(digest: Digest): BlobRecord | undefined {
    const entry = this.entries.get(digest);
    return entry === undefined ? undefined : this.snapshot(entry);
  }

  async begin(digest: Digest, sizeBytes: number): Promise<BlobRecord> {
    this.assertOpen();
    if (!isDigest(digest)) throw new DigestInvalidError(`invalid digest ${JSON.stringify(String(digest).slice(0, 100))}`);
    const layout = layoutFor(sizeBytes);
    let entry = this.entries.get(digest);
    if (entry === undefined) {
      let pending = this.pendingBegins.get(digest);
      if (pending === undefined) {
        pending = this.admitAndCreate(digest, layout).finally(() => this.pendingBegins.delete(digest));
        this.pendingBegins.set(digest, pending);
      }
      entry = await pending;
    } else {
      // Whoever begins a blob is about to use it: it must not look abandoned.
      this.touch(entry);
    }
    if (entry.layout.blobSizeBytes !== sizeBytes) {
      throw new SizeMismatchError(`${digest} is held with ${entry.layout.blobSizeBytes} bytes, not ${sizeBytes}`);
    }
    return this.snapshot(entry);
  }

  async setPieceHashes(digest: Digest, pieceSha256: ReadonlyArray<string | null>, options: { certified?: boolean } = {}): Promise<void> {
    this.assertOpen();
    const entry = this.current(digest);
    if (pieceSha256.length !== entry.layout.pieceCount) {
      throw new BadRequestError(`${pieceSha256.length} piece hashes for ${digest}, which has ${entry.layout.pieceCount} pieces`);
    }
    const certified = options.certified === true;
    if (certified && pieceSha256.some((sha) => sha === null)) throw new BadRequestError(`certified piece hashes for ${digest} must all be known`);
    // Check everything before changing anything, so a bad list leaves the record as it was.
    pieceSha256.forEach((sha, index) => {
      if (sha === null) return;
      if (!SHA256_HEX_RE.test(sha)) throw new BadRequestError(`piece ${index} of ${digest}: invalid sha256 ${JSON.stringify(sha.slice(0, 80))}`);
      const known = entry.pieceSha256[index];
      if (known !== null && known !== undefined && known !== sha) {
        throw new DigestMismatchError(`piece ${index} of ${digest}: hash ${sha} contradicts the recorded ${known}`);
      }
    });
    let changed = false;
    pieceSha256.forEach((sha, index) => {
      if (sha !== null && entry.pieceSha256[index] === null) {
        entry.pieceSha256[index] = sha;
        changed = true;
      }
    });
    if (certified && !entry.certified && !entry.complete) {
      // Not persisted: after a restart the blob is hashed whole again, as before.
      entry.certified = true;
      entry.hints.clear();
      this.track(this.kickAdvance(entry));
    }
    if (!changed) return;
    entry.snapshot = undefined;
    try {
      await this.persist(entry);
    } catch (err) {
      if (isDiskFull(err)) throw await this.diskFull(entry, digest, err);
      throw err;
    }
  }

  async writePiece(
    digest: Digest,
    index: number,
    source: Readable,
    options: { expectedSha256?: string; signal?: AbortSignal } = {},
  ): Promise<void> {
    const { signal } = options;
    let unlock: (() => void) | undefined;
    let entry: Entry | undefined;
    try {
      this.assertOpen();
      signal?.throwIfAborted();
      entry = this.current(digest);
      entry.writers++;
      this.touch(entry);
      const span = spanOf(entry, index);
      const expected = expectedSha256(entry, index, options.expectedSha256);
      unlock = await this.lockPiece(entry, index, signal);
      this.assertCurrent(entry);
      if (entry.complete || testBit(entry.verified, index)) {
        await drain(source, signal);
        return;
      }
      await this.streamPiece(entry, index, span, expected, source, signal);
    } catch (err) {
      destroyQuietly(source);
      if (signal?.aborted === true) throw signal.reason;
      if (isDiskFull(err)) throw await this.diskFull(entry, digest, err);
      // Discarded while we wrote (its file closed under us): say why, once its files are gone.
      if (entry !== undefined && !this.isCurrent(entry) && entry.discardReason !== undefined) {
        await entry.discarded;
        throw entry.discardReason;
      }
      throw err;
    } finally {
      unlock?.();
      if (entry !== undefined) this.writerDone(entry);
    }
  }

  async ingest(digest: Digest, sizeBytes: number, source: Readable, options: { signal?: AbortSignal } = {}): Promise<void> {
    const { signal } = options;
    let entry: Entry;
    try {
      signal?.throwIfAborted();
      await this.begin(digest, sizeBytes);
      entry = this.current(digest);
    } catch (err) {
      destroyQuietly(source);
      throw signal?.aborted === true ? signal.reason : err;
    }
    entry.writers++;
    this.touch(entry);
    try {
      await this.ingestInto(entry, sizeBytes, source, signal);
    } finally {
      this.writerDone(entry);
    }
  }

  private async ingestInto(entry: Entry, sizeBytes: number, source: Readable, signal: AbortSignal | undefined): Promise<void> {
    const { digest } = entry;
    if (entry.complete) {
      await drain(source, signal).catch((err: unknown) => {
        throw signal?.aborted === true ? signal.reason : err;
      });
      return;
    }
    const state: IngestState = {
      index: 0,
      pieceBytes: 0,
      totalBytes: 0,
      pieceHash: undefined,
      blobHash: createHash('sha256'),
      writes: false,
      unlock: undefined,
      writer: undefined,
    };
    const sink = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        this.ingestChunk(entry, state, chunk, signal).then(() => done(), done);
      },
      final: (done) => {
        if (state.totalBytes !== sizeBytes) done(new SizeMismatchError(`${digest}: got ${state.totalBytes} bytes, expected ${sizeBytes}`));
        else done();
      },
    });
    let failure: { reason: unknown } | undefined;
    try {
      await pipeline(source, sink, { signal });
      // Every piece left a hint, so this step only chains hashes and compares the digest.
      await this.kickAdvance(entry);
      if (!entry.complete) throw entry.discardReason ?? new BlobUnknownError(digest);
    } catch (err) {
      failure = { reason: signal?.aborted === true ? signal.reason : err };
    } finally {
      await state.writer?.settle();
      state.unlock?.();
    }
    if (failure === undefined) return;
    let { reason } = failure;
    if (signal?.aborted !== true && isDiskFull(reason)) reason = await this.diskFull(entry, digest, reason);
    // A second ingest failing must not throw away a blob the first one completed
    // (a discard already under way is waited for).
    else if (!this.isCurrent(entry) || !entry.complete) await this.discard(entry, toError(reason));
    throw reason;
  }

  hasPiece(digest: Digest, index: number): boolean {
    const entry = this.entries.get(digest);
    if (entry === undefined || !Number.isInteger(index) || index < 0 || index >= entry.layout.pieceCount) return false;
    return entry.complete || testBit(entry.verified, index);
  }

  readPiece(digest: Digest, index: number, range?: { start: number; end: number }): Readable {
    this.assertOpen();
    const entry = this.entries.get(digest);
    if (entry === undefined) throw new PieceUnavailableError(digest, index);
    const span = spanOf(entry, index);
    if (!entry.complete && !testBit(entry.verified, index)) throw new PieceUnavailableError(digest, index);
    const last = span.offset + span.length - 1;
    const start = range?.start ?? span.offset;
    const end = range?.end ?? last;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < span.offset || end > last || start > end) {
      throw new RangeInvalidError(`bytes ${start}-${end} are not inside piece ${index} (${span.offset}-${last}) of ${digest}`);
    }
    return readableOf(this.openReader(digest, { start, end }));
  }

  readBlob(digest: Digest, range?: { start: number; end: number }): Readable {
    this.assertOpen();
    const entry = this.entries.get(digest);
    if (entry === undefined || !entry.complete) throw new BlobUnknownError(digest);
    return readableOf(this.openReader(digest, range));
  }

  /**
   * Bytes [start, end] (inclusive; the whole blob without a range) read into
   * the caller's buffers. Works on a partial blob too: each read covers only
   * verified pieces and rejects with PieceUnavailableError at one that is not
   * (wait for it first). The blob is not evicted while the reader is open.
   */
  openReader(digest: Digest, range?: { start: number; end: number }): ChunkReader {
    this.assertOpen();
    const entry = this.entries.get(digest);
    if (entry === undefined) throw new BlobUnknownError(digest);
    const size = entry.layout.blobSizeBytes;
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    if (range !== undefined && (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end >= size || start > end)) {
      throw new RangeInvalidError(`bytes ${start}-${end} are not inside ${digest} (${size} bytes)`);
    }
    this.touch(entry);
    entry.readers++;
    return new RangeReader(
      {
        digest,
        open: () => this.openForRead(entry),
        verifiedEnd: (position, want) => this.verifiedEnd(entry, position, want),
        release: () => {
          entry.readers--;
        },
      },
      start,
      end + 1,
    );
  }

  async waitForPiece(digest: Digest, index: number, options: { signal?: AbortSignal } = {}): Promise<void> {
    const entry = this.entries.get(digest);
    if (entry === undefined) throw new BlobUnknownError(digest);
    spanOf(entry, index);
    if (entry.complete || testBit(entry.verified, index)) return;
    this.assertOpen();
    return this.waiters.wait(digest, index, options.signal);
  }

  /**
   * Resolves once the blob's bytes have matched its digest, which may be
   * before it is complete (durable, in blobs/); rejects as waitForComplete does.
   */
  async waitForVerified(digest: Digest, options: { signal?: AbortSignal } = {}): Promise<void> {
    const entry = this.entries.get(digest);
    if (entry === undefined) throw new BlobUnknownError(digest);
    if (entry.complete || entry.digestVerified === true) return;
    this.assertOpen();
    return this.waiters.wait(digest, DIGEST_VERIFIED, options.signal);
  }

  async waitForComplete(digest: Digest, options: { signal?: AbortSignal } = {}): Promise<void> {
    const entry = this.entries.get(digest);
    if (entry === undefined) throw new BlobUnknownError(digest);
    if (entry.complete) return;
    this.assertOpen();
    return this.waiters.wait(digest, COMPLETE, options.signal);
  }

  async delete(digest: Digest): Promise<void> {
    this.assertOpen();
    await this.pendingBegins.get(digest)?.catch(noop);
    const entry = this.entries.get(digest);
    if (entry === undefined) return;
    await this.discard(entry, new BlobUnknownError(digest, { cause: new Error('deleted') }), 'info');
  }

  list(): Array<{ digest: Digest; sizeBytes: number; complete: boolean; lastAccessMs: number }> {
    return [...this.entries.values()].map((e) => ({
      digest: e.digest,
      sizeBytes: e.layout.blobSizeBytes,
      complete: e.complete,
      lastAccessMs: e.lastAccessMs,
    }));
  }

  usage(): StoreUsage {
    return { bytes: this.heldBytes, quotaBytes: this.quotaBytes, blobs: this.entries.size };
  }

  close(): Promise<void> {
    this.closePromise ??= this.shutdown();
    return this.closePromise;
  }

  // --- opening -------------------------------------------------------------

  private async load(): Promise<void> {
    await mkdir(this.blobDir, { recursive: true });
    await mkdir(this.partialDir, { recursive: true });
    await this.db.open();
    const drop: Array<{ key: string; why: string }> = [];
    const upgraded: Entry[] = [];
    const now = this.clock.now();
    for await (const [key, value] of this.db.iterator()) {
      if (!isDigest(key)) {
        drop.push({ key, why: 'key is not a digest' });
        continue;
      }
      const decoded = decodeRecord(value);
      if (typeof decoded === 'string') {
        drop.push({ key, why: decoded });
        continue;
      }
      const entry = newEntry(key, decoded.layout, decoded.lastAccessMs || now);
      decoded.pieceSha256.forEach((sha, i) => (entry.pieceSha256[i] = sha));
      entry.verified.set(decoded.verified);
      entry.verifiedCount = countBits(entry.verified, entry.layout.pieceCount);
      const size = entry.layout.blobSizeBytes;
      const blobSize = await fileSize(this.blobPath(key));
      if (decoded.complete) {
        if (blobSize !== size) {
          drop.push({ key, why: `complete blob file ${blobSize === undefined ? 'missing' : `has ${blobSize} bytes`}` });
          continue;
        }
        entry.complete = true;
        entry.prefix = undefined;
      } else {
        const partialSize = await fileSize(this.partialPath(key));
        if (partialSize !== size) {
          // Only verified files are ever renamed into blobs/: finding it there means we
          // crashed between the rename and the record update, and the blob is complete.
          if (blobSize === size && entry.verifiedCount === entry.layout.pieceCount) {
            entry.complete = true;
            entry.prefix = undefined;
            upgraded.push(entry);
          } else {
            drop.push({ key, why: `partial file ${partialSize === undefined ? 'missing' : `has ${partialSize} bytes`}` });
            continue;
          }
        }
      }
      if (entry.complete && this.verifyOnOpen === 'complete') {
        // Its size matched the record above, so the whole file is the range.
        const hash = createHash('sha256');
        await hashFileRange(this.blobPath(key), hash, 0, entry.layout.blobSizeBytes - 1, this.closing.signal);
        const actual = `sha256:${hash.digest('hex')}`;
        if (actual !== key) {
          drop.push({ key, why: `blob file hashes to ${actual}` });
          continue;
        }
      }
      this.hold(entry);
    }
    for (const { key, why } of drop) {
      this.log.warn({ digest: key, why }, 'dropping blob record at open');
      await this.db.del(key);
      if (isDigest(key)) {
        await rm(this.partialPath(key), { force: true });
        await rm(this.blobPath(key), { force: true });
      }
    }
    for (const entry of upgraded) {
      this.log.info({ digest: entry.digest }, 'blob found complete at open');
      await this.db.put(entry.digest, encodeRecord(entry));
    }
    await this.removeOrphans(this.partialDir, (d) => this.entries.get(d)?.complete === false);
    await this.removeOrphans(this.blobDir, (d) => this.entries.get(d)?.complete === true);
    // Crash leftovers with every piece verified but no completion: nothing else will trigger it.
    for (const entry of this.entries.values()) {
      if (!entry.complete && entry.verifiedCount === entry.layout.pieceCount) this.track(this.kickAdvance(entry));
    }
    // The quota may have been lowered since the last run.
    const quota = this.quotaBytes;
    if (quota !== undefined && this.heldBytes > quota * this.highWatermark) await this.evict(quota * this.lowWatermark, 'quota');
    const complete = [...this.entries.values()].filter((e) => e.complete).length;
    this.log.info({ complete, partial: this.entries.size - complete, bytes: this.heldBytes, quotaBytes: quota }, 'piece store open');
  }

  /** Files without a record are leftovers of a crash between creating a file and writing its record, or between deleting them. */
  private async removeOrphans(dir: string, held: (digest: Digest) => boolean): Promise<void> {
    for (const name of await readdir(dir)) {
      const digest = `sha256:${name}`;
      if (isDigest(digest) && held(digest)) continue;
      this.log.warn({ file: join(dir, name) }, 'removing orphan file');
      await rm(join(dir, name), { force: true, recursive: true });
    }
  }

  // --- writing -------------------------------------------------------------

  private async create(digest: Digest, layout: PieceLayout): Promise<Entry> {
    const existing = this.entries.get(digest);
    if (existing !== undefined) return existing;
    this.assertOpen();
    const entry = newEntry(digest, layout, this.clock.now());
    const path = this.partialPath(digest);
    const fh = await open(path, 'w');
    try {
      // Sparse: pieces land at their offsets in any order without preallocating the disk.
      await fh.truncate(layout.blobSizeBytes);
    } finally {
      await fh.close();
    }
    try {
      await this.db.put(digest, encodeRecord(entry));
    } catch (err) {
      await rm(path, { force: true });
      throw err;
    }
    this.hold(entry);
    this.log.debug({ digest, sizeBytes: layout.blobSizeBytes, pieceCount: layout.pieceCount }, 'blob begun');
    if (layout.pieceCount === 0) this.track(this.kickAdvance(entry));
    return entry;
  }

  private async streamPiece(
    entry: Entry,
    index: number,
    span: { offset: number; length: number },
    expected: string,
    source: Readable,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const writer = new PositionalWriter(await this.openForWrite(entry), span.offset);
    // The prefix ends exactly where this piece starts (and cannot move: this piece is
    // unverified and we hold its lock), so hashing the piece on top of a copy gives
    // the prefix through this piece without reading it back. Certified blobs skip it.
    const hint = !entry.certified && entry.prefix?.bytes === span.offset ? entry.prefix.hash.copy() : undefined;
    const pieceHash = createHash('sha256');
    let bytes = 0;
    // A plain loop, not a stream pipeline: per-chunk stream machinery cost more than the hashing.
    if (signal !== undefined) addAbortSignal(signal, source);
    try {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        // Refuse before writing: extra bytes would land on the next piece.
        if (bytes > span.length) throw new SizeMismatchError(`piece ${index} of ${entry.digest}: more than ${span.length} bytes`);
        pieceHash.update(chunk);
        hint?.update(chunk);
        await writer.push(chunk);
      }
      await writer.flush();
    } finally {
      await writer.settle();
    }
    if (bytes !== span.length) throw new SizeMismatchError(`piece ${index} of ${entry.digest}: got ${bytes} bytes, expected ${span.length}`);
    const actual = pieceHash.digest('hex');
    if (actual !== expected) throw new DigestMismatchError(`piece ${index} of ${entry.digest} hashed to ${actual}, expected ${expected}`);
    await this.markVerified(entry, index, actual, hint);
  }

  private async ingestChunk(entry: Entry, state: IngestState, chunk: Buffer, signal: AbortSignal | undefined): Promise<void> {
    const { layout } = entry;
    if (state.totalBytes + chunk.length > layout.blobSizeBytes) {
      throw new SizeMismatchError(`${entry.digest}: more than the expected ${layout.blobSizeBytes} bytes`);
    }
    let at = 0;
    while (at < chunk.length) {
      if (state.pieceHash === undefined) {
        state.unlock = await this.lockPiece(entry, state.index, signal);
        this.assertCurrent(entry);
        state.writes = !entry.complete && !testBit(entry.verified, state.index);
        state.pieceHash = createHash('sha256');
        state.pieceBytes = 0;
      }
      const span = pieceSpan(layout, state.index);
      const take = Math.min(span.length - state.pieceBytes, chunk.length - at);
      const part = chunk.subarray(at, at + take);
      state.pieceHash.update(part);
      state.blobHash.update(part);
      if (state.writes) {
        state.writer ??= new PositionalWriter(await this.openForWrite(entry), span.offset);
        await state.writer.push(part);
      }
      state.pieceBytes += take;
      state.totalBytes += take;
      at += take;
      if (state.pieceBytes === span.length) await this.endIngestPiece(entry, state, span.offset);
    }
  }

  private async endIngestPiece(entry: Entry, state: IngestState, offset: number): Promise<void> {
    const index = state.index;
    await state.writer?.flush();
    state.writer = undefined;
    const sha = (state.pieceHash as Hash).digest('hex');
    const known = entry.pieceSha256[index];
    if (known !== null && known !== undefined && known !== sha) {
      throw new DigestMismatchError(`piece ${index} of ${entry.digest} hashed to ${sha}, recorded ${known}`);
    }
    // The ingest hash covers exactly [0, end of this piece]: the prefix takes it as is.
    const hint = state.blobHash.copy();
    if (state.writes) {
      await this.markVerified(entry, index, sha, hint);
    } else if (entry.prefix !== undefined && entry.prefix.bytes <= offset) {
      entry.hints.set(index, hint);
      this.track(this.kickAdvance(entry));
    }
    state.unlock?.();
    state.unlock = undefined;
    state.pieceHash = undefined;
    state.index++;
  }

  private async markVerified(entry: Entry, index: number, sha: string, hint: Hash | undefined): Promise<void> {
    this.assertCurrent(entry);
    entry.pieceSha256[index] = sha;
    setBit(entry.verified, index, true);
    entry.verifiedCount++;
    entry.snapshot = undefined;
    entry.lastAccessMs = this.clock.now();
    const offset = index * entry.layout.pieceSizeBytes;
    if (hint !== undefined && entry.prefix !== undefined && entry.prefix.bytes <= offset) entry.hints.set(index, hint);
    // The bytes are written and verified: readers may have them now. The record
    // follows in the background (coalesced: one db write covers every piece
    // verified meanwhile) instead of one awaited db write per piece, which
    // capped a blob's fill rate. A crash before the write only forgets pieces
    // (fetched again); nothing unverified ever becomes readable.
    this.emit('piece', entry.digest, index);
    this.waiters.resolve(entry.digest, index);
    this.track(this.kickAdvance(entry));
    this.track(
      this.persist(entry).catch(async (err: unknown) => {
        if (!this.isCurrent(entry)) return;
        const reason = isDiskFull(err) ? await this.diskFull(entry, entry.digest, err) : err instanceof Error ? err : new Error(String(err));
        this.log.warn({ digest: entry.digest, err: reason.message }, 'could not record verified pieces; blob discarded');
        if (this.isCurrent(entry)) await this.discard(entry, reason);
      }),
    );
  }

  /**
   * The blob's partial file open for writing, shared by its writers (opened
   * once, closed by finalize, discard or close), and only while it still
   * belongs to `entry` (not to a blob begun again after a discard).
   */
  private async openForWrite(entry: Entry): Promise<FileHandle> {
    this.assertCurrent(entry);
    if (entry.writeHandle === undefined) {
      const opening = open(this.partialPath(entry.digest), 'r+');
      entry.writeHandle = opening;
      opening.catch(() => {
        if (entry.writeHandle === opening) entry.writeHandle = undefined;
      });
    }
    const fh = await entry.writeHandle;
    this.assertCurrent(entry);
    return fh;
  }

  /**
   * A writer finished: with none left for WRITE_HANDLE_IDLE_MS the blob's write
   * descriptor is closed, so blobs left partial (a download given up) do not
   * each keep a descriptor open until they are completed or evicted.
   */
  private writerDone(entry: Entry): void {
    entry.writers--;
    if (entry.writers > 0 || entry.writeHandle === undefined || entry.idleCloseTimer !== undefined) return;
    entry.idleCloseTimer = setTimeout(() => {
      entry.idleCloseTimer = undefined;
      // A writer still at work sets a new timer when it finishes.
      if (entry.writers > 0) return;
      this.track(this.closeWriteHandle(entry));
    }, WRITE_HANDLE_IDLE_MS);
    entry.idleCloseTimer.unref();
  }

  /** Closes the shared write descriptor (FileHandle.close waits for writes in flight). */
  private async closeWriteHandle(entry: Entry): Promise<void> {
    const handle = entry.writeHandle;
    entry.writeHandle = undefined;
    if (handle === undefined) return;
    const fh = await handle.catch(() => undefined);
    await fh?.close().catch((err: unknown) => this.log.warn({ digest: entry.digest, err }, 'closing a partial file failed'));
  }

  /** Serializes writers of one piece; the lock is released by calling the returned function. */
  private async lockPiece(entry: Entry, index: number, signal: AbortSignal | undefined): Promise<() => void> {
    const previous = entry.pieceLocks.get(index);
    let release: () => void = noop;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous === undefined ? mine : previous.then(() => mine);
    entry.pieceLocks.set(index, tail);
    const unlock = (): void => {
      release();
      if (entry.pieceLocks.get(index) === tail) entry.pieceLocks.delete(index);
    };
    if (previous !== undefined) {
      try {
        await abortable(previous, signal);
      } catch (err) {
        unlock();
        throw err;
      }
    }
    return unlock;
  }

  // --- whole-blob digest ---------------------------------------------------

  /**
   * Queues an advance step, unless one is queued and not yet started (it will
   * see this change too). Resolves after a step that started after the call.
   * Never rejects: failures discard the blob.
   */
  private kickAdvance(entry: Entry): Promise<void> {
    if (entry.advanceQueued !== undefined) return entry.advanceQueued;
    const step = entry.advanceTail.then(() => {
      entry.advanceQueued = undefined;
      return this.advance(entry);
    });
    entry.advanceQueued = step;
    entry.advanceTail = step;
    return step;
  }

  /** Extends the verified prefix as far as it goes; completes or discards the blob when it covers everything. */
  private async advance(entry: Entry): Promise<void> {
    const { layout, digest } = entry;
    try {
      if (entry.certified) {
        if (entry.prefix !== undefined && this.isCurrent(entry) && !this.closed && entry.verifiedCount === layout.pieceCount) await this.finalize(entry, undefined);
        return;
      }
      // Certified meanwhile (setPieceHashes): the pass stops, and a later advance completes the blob.
      while (this.isCurrent(entry) && !this.closed && entry.prefix !== undefined && !entry.certified) {
        const prefix = entry.prefix;
        if (prefix.bytes === layout.blobSizeBytes) {
          await this.finalize(entry, prefix.hash);
          return;
        }
        const first = prefix.bytes / layout.pieceSizeBytes;
        if (!testBit(entry.verified, first)) break;
        const hint = entry.hints.get(first);
        if (hint !== undefined) {
          entry.hints.delete(first);
          prefix.hash = hint;
          prefix.bytes = pieceEnd(layout, first);
          continue;
        }
        let last = first;
        while (last + 1 < layout.pieceCount && testBit(entry.verified, last + 1) && !entry.hints.has(last + 1)) last++;
        const end = pieceEnd(layout, last);
        await hashFileRange(this.partialPath(digest), prefix.hash, prefix.bytes, end - 1, this.closing.signal);
        prefix.bytes = end;
      }
    } catch (err) {
      if (this.closed || !this.isCurrent(entry)) return;
      if (entry.complete) {
        this.log.error({ digest, err }, 'blob complete but its record could not be written');
        return;
      }
      if (isDiskFull(err)) {
        await this.diskFull(entry, digest, err);
        return;
      }
      this.log.error({ digest, err }, 'checking the blob digest failed');
      await this.discard(entry, toError(err));
    } finally {
      const bytes = entry.prefix?.bytes;
      for (const index of entry.hints.keys()) {
        if (bytes === undefined || index * layout.pieceSizeBytes < bytes) entry.hints.delete(index);
      }
    }
  }

  /** `hash` covers the whole blob; undefined for a certified blob whose every piece matched. */
  private async finalize(entry: Entry, hash: Hash | undefined): Promise<void> {
    const { digest } = entry;
    entry.prefix = undefined;
    const actual = hash === undefined ? digest : `sha256:${hash.digest('hex')}`;
    if (actual !== digest) {
      await this.discard(entry, new DigestMismatchError(`pieces of ${digest} assembled to ${actual}`));
      return;
    }
    // Readers may have the last bytes now; making the file durable can take
    // seconds on a busy disk (a datasync waits for other writers' data too).
    entry.digestVerified = true;
    this.waiters.resolve(digest, DIGEST_VERIFIED);
    await this.serial(digest, async () => {
      if (!this.isCurrent(entry)) return;
      // Every piece is written, so the shared descriptor has no writer left.
      const fh = await this.openForWrite(entry);
      try {
        // Once in blobs/ it is served without further checks: make the bytes durable before the name.
        await fh.datasync();
      } finally {
        await this.closeWriteHandle(entry);
      }
      await rename(this.partialPath(digest), this.blobPath(digest));
      entry.complete = true;
      entry.hints.clear();
      entry.snapshot = undefined;
      entry.lastAccessMs = this.clock.now();
      this.log.info({ digest, sizeBytes: entry.layout.blobSizeBytes }, 'blob complete');
      this.emit('complete', digest);
      this.waiters.resolveAll(digest);
      try {
        await this.db.put(digest, encodeRecord(entry));
        entry.accessDirty = false;
      } catch (err) {
        // The file is in blobs/ and verified; a restart finds it there and upgrades the record.
        this.log.error({ digest, err }, 'could not record the blob as complete');
        entry.accessDirty = true;
      }
    });
  }

  /**
   * Forgets a blob: record and files go, then its waiters fail and 'discarded'
   * is emitted. `level` false: the caller logged it already.
   */
  private async discard(entry: Entry, reason: Error, level: 'warn' | 'info' | false = 'warn'): Promise<void> {
    // Already going: wait until its files are gone, so no caller reports the blob gone while they are still there.
    if (!this.isCurrent(entry)) return entry.discarded;
    const { digest } = entry;
    this.entries.delete(digest);
    this.heldBytes -= entry.layout.blobSizeBytes;
    entry.discardReason = reason;
    entry.prefix = undefined;
    entry.hints.clear();
    if (level !== false) this.log[level]({ digest, reason: reason.message }, 'blob discarded');
    entry.discarded = this.serial(digest, async () => {
      // Files first: on a full disk they free the space the db needs to record the
      // deletion. Either order is safe across a crash, as open drops a record whose
      // file is missing and deletes a file that has no record.
      try {
        // Closed first: an unlinked file gives its blocks back only once no descriptor holds it.
        await this.closeWriteHandle(entry);
        await rm(this.partialPath(digest), { force: true });
        await rm(this.blobPath(digest), { force: true });
        await this.db.del(digest);
      } catch (err) {
        this.log.error({ digest, err }, 'could not remove a discarded blob (the next open cleans up)');
      }
      // Inside the queue, so a begin() for the same digest queued behind us cannot see these.
      this.waiters.rejectAll(digest, reason);
      this.emit('discarded', digest, reason);
    });
    await entry.discarded;
  }

  // --- quota and eviction --------------------------------------------------

  /** Begins a blob once there is room for it; on a full quota or disk nothing of it is kept. */
  private async admitAndCreate(digest: Digest, layout: PieceLayout): Promise<Entry> {
    const size = layout.blobSizeBytes;
    let entry: Entry;
    this.reservedBytes += size;
    try {
      await this.admit(digest, size);
      entry = await this.serial(digest, () => this.create(digest, layout));
    } catch (err) {
      this.reservedBytes -= size;
      if (isDiskFull(err)) throw await this.diskFull(undefined, digest, err, size);
      throw err;
    }
    this.reservedBytes -= size;
    return entry;
  }

  /** Called with `size` already reserved: evicts down to the low watermark when usage passed the high one. */
  private async admit(digest: Digest, size: number): Promise<void> {
    const quota = this.quotaBytes;
    if (quota === undefined) return;
    const high = quota * this.highWatermark;
    // Alone above the high watermark, it would flush the whole cache for itself.
    if (size > high) throw new StoreFullError(`${digest} (${size} bytes) is larger than the cache's high watermark (${Math.floor(high)} bytes)`);
    if (this.usedBytes() > high) await this.evict(quota * this.lowWatermark, 'quota');
    if (this.usedBytes() > quota) {
      throw new StoreFullError(`no room for ${digest} (${size} bytes): ${this.heldBytes} of ${quota} bytes are held by blobs in use`);
    }
  }

  /**
   * Whether a blob may go: nobody reads, writes or waits for it, and a partial
   * one has been left alone long enough to be abandoned.
   */
  private evictable(entry: Entry, nowMs: number): boolean {
    if (entry.readers > 0 || entry.writers > 0 || entry.pieceLocks.size > 0 || this.waiters.has(entry.digest)) return false;
    return entry.complete || nowMs - entry.lastAccessMs >= this.partialIdleMs;
  }

  /** Evicts idle blobs, least recently used first, until usage is at most `targetBytes` or nothing more may go. */
  private evict(targetBytes: number, why: 'quota' | 'disk full'): Promise<void> {
    const run = this.evictTail.then(() => this.evictNow(targetBytes, why));
    this.evictTail = run.catch(noop);
    return run;
  }

  private async evictNow(targetBytes: number, why: 'quota' | 'disk full'): Promise<void> {
    if (this.usedBytes() <= targetBytes) return;
    const startMs = this.clock.now();
    const candidates = [...this.entries.values()].filter((e) => this.evictable(e, startMs)).sort((a, b) => a.lastAccessMs - b.lastAccessMs);
    for (const entry of candidates) {
      if (this.closed || this.usedBytes() <= targetBytes) break;
      const nowMs = this.clock.now();
      // Checked again right before the (synchronous) removal: a reader may have come since.
      if (!this.isCurrent(entry) || !this.evictable(entry, nowMs)) continue;
      const { digest } = entry;
      this.log.info(
        { digest, sizeBytes: entry.layout.blobSizeBytes, complete: entry.complete, ageMs: nowMs - entry.lastAccessMs, why },
        'blob evicted',
      );
      await this.discard(entry, new BlobUnknownError(digest, { cause: new Error(`evicted (${why})`) }), false);
    }
    if (!this.closed && this.usedBytes() > targetBytes) {
      this.log.warn({ bytes: this.heldBytes, targetBytes: Math.floor(targetBytes), quotaBytes: this.quotaBytes, why }, 'eviction stopped short: the rest is in use');
    }
  }

  /**
   * A write found no space: nothing of the blob is kept (it is discarded,
   * emitting 'discarded'), idle blobs are evicted so what comes next has room,
   * and the caller gets StoreFullError to stream the bytes through instead.
   */
  private diskFull(entry: Entry | undefined, digest: Digest, err: unknown, sizeBytes = entry?.layout.blobSizeBytes ?? 0): Promise<StoreFullError> {
    // Another writer of the blob, or its record's write, found the disk full
    // first (this error may be the StoreFullError it made): its handling, discard
    // and eviction both, is done before this caller reports the blob gone.
    if (entry?.diskFull !== undefined) return entry.diskFull;
    const discards = entry !== undefined && this.isCurrent(entry) && !entry.complete;
    const handling = this.handleDiskFull(entry, digest, err, sizeBytes);
    if (discards) entry.diskFull = handling;
    return handling;
  }

  private async handleDiskFull(entry: Entry | undefined, digest: Digest, err: unknown, sizeBytes: number): Promise<StoreFullError> {
    // Discarded for another reason first: still, its files are gone before the caller hears.
    if (entry !== undefined && !this.isCurrent(entry)) await entry.discarded;
    if (err instanceof StoreFullError) return err;
    const message = err instanceof Error ? err.message : String(err);
    const full = new StoreFullError(`no space left to store ${digest}: ${message}`, { cause: err });
    this.log.warn({ digest, sizeBytes, err: message }, 'disk full: blob not kept');
    if (entry !== undefined && this.isCurrent(entry) && !entry.complete) await this.discard(entry, full, false);
    if (!this.closed) {
      let target = Math.max(0, this.usedBytes() - sizeBytes);
      if (this.quotaBytes !== undefined) target = Math.min(target, this.quotaBytes * this.lowWatermark);
      await this.evict(target, 'disk full');
    }
    return full;
  }

  // --- bookkeeping ---------------------------------------------------------

  private persist(entry: Entry): Promise<void> {
    if (entry.pendingFlush !== undefined) return entry.pendingFlush;
    const flush = this.serial(entry.digest, async () => {
      // From here on, changes need another flush; everything before is in this one.
      entry.pendingFlush = undefined;
      if (!this.isCurrent(entry)) return;
      entry.accessDirty = false;
      await this.db.put(entry.digest, encodeRecord(entry));
    });
    entry.pendingFlush = flush;
    return flush;
  }

  private serial<T>(digest: Digest, task: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(digest) ?? Promise.resolve();
    const run = previous.then(task);
    const tail = run.then(noop, noop);
    this.chains.set(digest, tail);
    void tail.then(() => {
      if (this.chains.get(digest) === tail) this.chains.delete(digest);
    });
    return run;
  }

  private hold(entry: Entry): void {
    this.entries.set(entry.digest, entry);
    this.heldBytes += entry.layout.blobSizeBytes;
  }

  /** Held plus admitted: what the quota is checked against. */
  private usedBytes(): number {
    return this.heldBytes + this.reservedBytes;
  }

  /** Background work, awaited by close. Its callers handle their failures; one that slips through is logged, never unhandled. */
  private track(work: Promise<void>): void {
    this.background.add(work);
    void work.catch((err: unknown) => this.log.error({ err }, 'background store work failed')).finally(() => this.background.delete(work));
  }

  private touch(entry: Entry): void {
    entry.lastAccessMs = this.clock.now();
    entry.accessDirty = true;
  }

  private snapshot(entry: Entry): BlobRecord {
    entry.snapshot ??= Object.freeze({
      digest: entry.digest,
      layout: entry.layout,
      pieceSha256: Object.freeze([...entry.pieceSha256]),
      verifiedCount: entry.verifiedCount,
      complete: entry.complete,
    });
    return entry.snapshot;
  }

  /** Opens the blob's file for reading: the partial file, or blobs/ once completion renamed it. */
  private async openForRead(entry: Entry): Promise<FileHandle> {
    this.assertCurrent(entry);
    if (entry.complete) return open(this.blobPath(entry.digest), 'r');
    try {
      const handle = await open(this.partialPath(entry.digest), 'r');
      // A blob discarded and begun again has a new file whose bytes are not verified.
      if (this.isCurrent(entry)) return handle;
      await handle.close();
      throw entry.discardReason ?? new BlobUnknownError(entry.digest);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && entry.complete && this.isCurrent(entry)) return open(this.blobPath(entry.digest), 'r');
      throw err;
    }
  }

  /** See RangeReaderSource.verifiedEnd. */
  private verifiedEnd(entry: Entry, position: number, want: number): number {
    if (entry.complete) return position + want;
    this.assertCurrent(entry);
    const { pieceSizeBytes, pieceCount, blobSizeBytes } = entry.layout;
    let index = Math.floor(position / pieceSizeBytes);
    if (!testBit(entry.verified, index)) throw new PieceUnavailableError(entry.digest, index);
    while (index + 1 < pieceCount && (index + 1) * pieceSizeBytes < position + want && testBit(entry.verified, index + 1)) index++;
    return Math.min((index + 1) * pieceSizeBytes, blobSizeBytes);
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    const reason = new Error('piece store closed');
    this.closing.abort(reason);
    this.waiters.rejectEverything(reason);
    while (this.background.size > 0 || this.chains.size > 0) {
      await Promise.allSettled([...this.background, ...this.chains.values()]);
    }
    for (const entry of this.entries.values()) await this.closeWriteHandle(entry);
    for (const entry of this.entries.values()) {
      if (!entry.accessDirty) continue;
      await this.db.put(entry.digest, encodeRecord(entry)).catch((err: unknown) => this.log.warn({ digest: entry.digest, err }, 'could not save last access'));
    }
    await this.db.close();
    this.log.debug('piece store closed');
  }

  private current(digest: Digest): Entry {
    const entry = this.entries.get(digest);
    if (entry === undefined) throw new BlobUnknownError(digest);
    return entry;
  }

  private isCurrent(entry: Entry): boolean {
    return this.entries.get(entry.digest) === entry;
  }

  private assertCurrent(entry: Entry): void {
    if (!this.isCurrent(entry)) throw entry.discardReason ?? new BlobUnknownError(entry.digest);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('piece store closed');
  }

  private blobPath(digest: Digest): string {
    return join(this.blobDir, digestHex(digest));
  }

  private partialPath(digest: Digest): string {
    return join(this.partialDir, digestHex(digest));
  }
}

function newEntry(digest: Digest, layout: PieceLayout, lastAccessMs: number): Entry {
  return {
    digest,
    layout,
    pieceSha256: new Array<string | null>(layout.pieceCount).fill(null),
    verified: new Uint8Array(bitmapBytes(layout.pieceCount)),
    verifiedCount: 0,
    complete: false,
    lastAccessMs,
    accessDirty: false,
    readers: 0,
    writers: 0,
    certified: false,
    writeHandle: undefined,
    idleCloseTimer: undefined,
    discardReason: undefined,
    discarded: undefined,
    diskFull: undefined,
    prefix: { hash: createHash('sha256'), bytes: 0 },
    hints: new Map(),
    pieceLocks: new Map(),
    pendingFlush: undefined,
    advanceQueued: undefined,
    advanceTail: Promise.resolve(),
    snapshot: undefined,
  };
}

function layoutFor(sizeBytes: number): PieceLayout {
  try {
    return pieceLayout(sizeBytes);
  } catch (err) {
    throw new BadRequestError(err instanceof Error ? err.message : String(err));
  }
}

function spanOf(entry: Entry, index: number): { offset: number; length: number } {
  try {
    return pieceSpan(entry.layout, index);
  } catch (err) {
    throw new BadRequestError(`${entry.digest}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function pieceEnd(layout: PieceLayout, index: number): number {
  return Math.min((index + 1) * layout.pieceSizeBytes, layout.blobSizeBytes);
}

function expectedSha256(entry: Entry, index: number, given: string | undefined): string {
  const known = entry.pieceSha256[index] ?? null;
  if (given === undefined) {
    if (known === null) throw new BadRequestError(`piece ${index} of ${entry.digest}: no expected hash known or given`);
    return known;
  }
  if (!SHA256_HEX_RE.test(given)) throw new BadRequestError(`piece ${index} of ${entry.digest}: invalid sha256 ${JSON.stringify(given.slice(0, 80))}`);
  if (known !== null && known !== given) throw new DigestMismatchError(`piece ${index} of ${entry.digest}: expected hash ${given} contradicts the recorded ${known}`);
  return given;
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function hashFileRange(path: string, hash: Hash, start: number, endInclusive: number, signal: AbortSignal): Promise<void> {
  const handle = await open(path, 'r');
  const buffer = hashBuffers.pop() ?? Buffer.allocUnsafeSlow(HASH_READ_CHUNK_BYTES);
  try {
    let position = start;
    while (position <= endInclusive) {
      signal.throwIfAborted();
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, endInclusive + 1 - position), position);
      if (bytesRead === 0) throw new SizeMismatchError(`${path}: read ${position - start} bytes at ${start}, expected ${endInclusive - start + 1}`);
      hash.update(buffer.subarray(0, bytesRead));
      position += bytesRead;
    }
  } finally {
    await handle.close();
    // hash.update copies nothing it keeps: the buffer is free again.
    if (hashBuffers.length < MAX_HASH_BUFFERS) hashBuffers.push(buffer);
  }
}

/**
 * Writes a run of bytes at increasing positions of a file in IO_CHUNK_BYTES
 * writes (one syscall per MiB instead of one per network chunk), with one
 * write in flight while the next fills. Bounded: at most two chunks held.
 */
class PositionalWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private inflight: Promise<void> | undefined;

  constructor(
    private readonly fh: FileHandle,
    private position: number,
  ) {}

  async push(chunk: Buffer): Promise<void> {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= IO_CHUNK_BYTES) await this.startWrite();
  }

  /** Writes what is pending and waits until every byte is written. */
  async flush(): Promise<void> {
    if (this.pendingBytes > 0) await this.startWrite();
    const last = this.inflight;
    this.inflight = undefined;
    await last;
  }

  /** Waits for a write still in flight, ignoring its failure (cleanup after an error). */
  async settle(): Promise<void> {
    await this.inflight?.catch(noop);
  }

  private async startWrite(): Promise<void> {
    await this.inflight;
    // Gathered with writev, not concatenated: a copy into a fresh 1 MiB
    // buffer cost more main-thread time (page faults, GC) than the write.
    const chunks = this.pending;
    const at = this.position;
    this.position += this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    const write = writeFully(this.fh, chunks, at);
    // Handled here so a failure is not reported as unhandled before it is awaited.
    write.catch(noop);
    this.inflight = write;
  }
}

async function writeFully(fh: FileHandle, chunks: Buffer[], position: number): Promise<void> {
  let rest = chunks;
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest, position);
    position += bytesWritten;
    rest = dropBytes(rest, bytesWritten);
  }
}

/** What is left of `chunks` after its first `count` bytes (after a short write). */
function dropBytes(chunks: Buffer[], count: number): Buffer[] {
  let skip = count;
  let index = 0;
  while (index < chunks.length && skip >= (chunks[index] as Buffer).length) skip -= (chunks[index++] as Buffer).length;
  const rest = chunks.slice(index);
  if (skip > 0 && rest.length > 0) rest[0] = (rest[0] as Buffer).subarray(skip);
  return rest;
}

function drain(source: Readable, signal: AbortSignal | undefined): Promise<void> {
  return pipeline(source, new Writable({ write: (_chunk, _encoding, done) => done() }), { signal });
}


/** ENOSPC / EDQUOT from fs (a `code`) or from level (only in the message), anywhere in the cause chain. */
function isDiskFull(err: unknown): boolean {
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

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

/** A stream over a reader, for callers that want one (each chunk a new buffer, nothing reused). */
function readableOf(reader: ChunkReader): Readable {
  return new Readable({
    highWaterMark: IO_CHUNK_BYTES,
    read(): void {
      const into = Buffer.allocUnsafe(IO_CHUNK_BYTES);
      reader.read(into).then(
        (count) => this.push(count === 0 ? null : into.subarray(0, count)),
        (err: Error) => this.destroy(err),
      );
    },
    destroy(err, done): void {
      reader.close();
      done(err);
    },
  });
}
