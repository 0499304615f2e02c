import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Level } from 'level';
import {
  BadRequestError,
  BlobUnknownError,
  ConfigError,
  DigestInvalidError,
  DigestMismatchError,
  destroyQuietly,
  isDigest,
  SizeMismatchError,
  systemClock,
  type ChunkReader,
  type Clock,
  type Digest,
  type Logger,
} from '@shoal/core';
import { Catalog, isDiskFull } from './catalog.js';
import { layoutFor, noop, spanOf, type Entry } from './entry.js';
import { loadCatalog } from './opening.js';
import { DEFAULT_HIGH_WATERMARK, DEFAULT_LOW_WATERMARK, DEFAULT_PARTIAL_IDLE_MS, Quota } from './quota.js';
import { Reading } from './reading.js';
import { encodeRecord, SHA256_HEX_RE, testBit, type StoredRecord } from './record.js';
import type { BlobRecord, ExpectedSha256, IngestingPieceReader, PieceStoreApi, PieceStoreEvents, StoreUsage } from './types.js';
import { IngestTailReader } from './ingest-tail.js';
import { arrivingKey, COMPLETE, DIGEST_VERIFIED } from './waiters.js';
import { WholeDigest } from './whole-digest.js';
import { Writing } from './writing.js';

export { DEFAULT_HIGH_WATERMARK, DEFAULT_LOW_WATERMARK, DEFAULT_PARTIAL_IDLE_MS } from './quota.js';
export { DEFAULT_FRESH_PIECE_BYTES } from './fresh-pieces.js';

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
   * Every read for sending checks its pieces anyway (see reading.ts).
   * @default 'none'
   */
  verifyOnOpen?: 'none' | 'complete' | undefined;
  /**
   * Memory for pieces just verified, served from there to the readers right
   * behind the writer instead of being read back from disk and hashed again
   * (see fresh-pieces.ts; the services use DEFAULT_FRESH_PIECE_BYTES). 0 keeps
   * none: every read goes to the disk.
   * @default 0
   */
  freshPieceBytes?: number | undefined;
}

/**
 * The piece store: blobs on disk, one level record per blob. See types.ts for
 * the layout and integrity rules. This front keeps the API and hands each call
 * to the part that does it: opening.ts (opening and recovery), writing.ts
 * (pieces and ingest), whole-digest.ts (the prefix hash and certification),
 * reading.ts (verified reads for sending), quota.ts (quota and eviction), all
 * over catalog.ts (the entries, records and discard).
 */
export class PieceStore extends EventEmitter<PieceStoreEvents> implements PieceStoreApi {
  private readonly catalog: Catalog;
  private readonly whole: WholeDigest;
  private readonly writing: Writing;
  private readonly reading: Reading;
  private readonly quota: Quota;
  private readonly verifyOnOpen: 'none' | 'complete';
  private readonly pendingBegins = new Map<Digest, Promise<Entry>>();
  private closePromise: Promise<void> | undefined;

  private constructor(components: PieceStoreComponents, init: PieceStoreInit) {
    super();
    const quotaInit = {
      quotaBytes: init.quotaBytes,
      highWatermark: init.highWatermark ?? DEFAULT_HIGH_WATERMARK,
      lowWatermark: init.lowWatermark ?? DEFAULT_LOW_WATERMARK,
      partialIdleMs: init.partialIdleMs ?? DEFAULT_PARTIAL_IDLE_MS,
    };
    this.verifyOnOpen = init.verifyOnOpen ?? 'none';
    const { quotaBytes, highWatermark, lowWatermark, partialIdleMs } = quotaInit;
    const problems: string[] = [];
    if (quotaBytes !== undefined && (!Number.isSafeInteger(quotaBytes) || quotaBytes <= 0)) problems.push(`quotaBytes must be a positive integer, not ${quotaBytes}`);
    if (!(highWatermark > 0 && highWatermark <= 1)) problems.push(`highWatermark must be in (0, 1], not ${highWatermark}`);
    if (!(lowWatermark > 0 && lowWatermark <= highWatermark)) problems.push(`lowWatermark must be in (0, highWatermark], not ${lowWatermark}`);
    if (!(partialIdleMs >= 0)) problems.push(`partialIdleMs must be ≥ 0, not ${partialIdleMs}`);
    const freshPieceBytes = init.freshPieceBytes ?? 0;
    if (!Number.isSafeInteger(freshPieceBytes) || freshPieceBytes < 0) problems.push(`freshPieceBytes must be a non-negative integer, not ${freshPieceBytes}`);
    if (this.verifyOnOpen !== 'none' && this.verifyOnOpen !== 'complete') problems.push(`verifyOnOpen must be 'none' or 'complete', not ${String(this.verifyOnOpen)}`);
    if (problems.length > 0) throw new ConfigError(problems);

    const db = new Level<string, StoredRecord>(join(init.dir, 'db'), { valueEncoding: 'json' });
    const catalog = new Catalog(this, { log: components.log.child({ module: 'piece-store' }), clock: components.clock ?? systemClock }, init.dir, db, freshPieceBytes);
    // The parts call each other only through these late-bound functions, set up once here.
    const quota: Quota = new Quota(catalog, quotaInit, {
      create: (digest, layout) => writing.create(digest, layout),
      inUse: (entry) => reading.busy(entry) || writing.busy(entry) || catalog.waiters.has(entry.digest),
    });
    const whole: WholeDigest = new WholeDigest(catalog, {
      syncAndClose: (entry) => writing.syncAndClose(entry),
      diskFull: (entry, err) => quota.diskFull(entry, entry.digest, err),
    });
    const writing: Writing = new Writing(catalog, whole, { diskFull: (entry, digest, err) => quota.diskFull(entry, digest, err) });
    const reading = new Reading(catalog);
    catalog.setDiscardHooks({ closeWriteHandle: (entry) => writing.closeWriteHandle(entry), forgetDigest: (entry) => whole.forget(entry) });
    this.catalog = catalog;
    this.quota = quota;
    this.whole = whole;
    this.writing = writing;
    this.reading = reading;
  }

  static async open(components: PieceStoreComponents, init: PieceStoreInit): Promise<PieceStore> {
    const store = new PieceStore(components, init);
    const { catalog } = store;
    await loadCatalog(catalog, store.whole, store.verifyOnOpen);
    await store.quota.enforce();
    const complete = [...catalog.entries.values()].filter((e) => e.complete).length;
    catalog.log.info({ complete, partial: catalog.entries.size - complete, bytes: catalog.heldBytes, quotaBytes: init.quotaBytes }, 'piece store open');
    return store;
  }

  /** Bytes of pieces held in memory since they were verified (for tests and metrics; see freshPieceBytes). */
  get freshBytes(): number {
    return this.catalog.fresh.usedBytes;
  }

  /** Pending waitForPiece / waitForComplete promises (for tests and metrics). */
  get waiterCount(): number {
    return this.catalog.waiters.size;
  }

  get(digest: Digest): BlobRecord | undefined {
    const entry = this.catalog.entries.get(digest);
    return entry === undefined ? undefined : this.catalog.snapshot(entry);
  }

  async begin(digest: Digest, sizeBytes: number): Promise<BlobRecord> {
    const { catalog } = this;
    catalog.assertOpen();
    if (!isDigest(digest)) throw new DigestInvalidError(`invalid digest ${JSON.stringify(String(digest).slice(0, 100))}`);
    const layout = layoutFor(sizeBytes);
    let entry = catalog.entries.get(digest);
    if (entry === undefined) {
      let pending = this.pendingBegins.get(digest);
      if (pending === undefined) {
        pending = this.quota.admitAndCreate(digest, layout).finally(() => this.pendingBegins.delete(digest));
        this.pendingBegins.set(digest, pending);
      }
      entry = await pending;
    } else {
      // Whoever begins a blob is about to use it: it must not look abandoned.
      catalog.touch(entry);
    }
    if (entry.layout.blobSizeBytes !== sizeBytes) {
      throw new SizeMismatchError(`${digest} is held with ${entry.layout.blobSizeBytes} bytes, not ${sizeBytes}`);
    }
    return catalog.snapshot(entry);
  }

  async setPieceHashes(digest: Digest, pieceSha256: ReadonlyArray<string | null>, options: { certified?: boolean; certificationExpected?: boolean } = {}): Promise<void> {
    const { catalog } = this;
    catalog.assertOpen();
    const entry = catalog.current(digest);
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
    const changed = catalog.learnHashes(entry, pieceSha256);
    if (certified) this.whole.certify(entry);
    else if (options.certificationExpected === true) this.whole.awaitCertification(entry);
    if (!changed) return;
    try {
      await catalog.persist(entry);
    } catch (err) {
      if (isDiskFull(err)) throw await this.quota.diskFull(entry, digest, err);
      throw err;
    }
  }

  writePiece(digest: Digest, index: number, source: Readable, options: { expectedSha256?: ExpectedSha256; signal?: AbortSignal } = {}): Promise<void> {
    return this.writing.writePiece(digest, index, source, options);
  }

  async ingest(digest: Digest, sizeBytes: number, source: Readable, options: { signal?: AbortSignal; onChunk?: (bytes: number) => void } = {}): Promise<void> {
    const { signal } = options;
    let entry: Entry;
    try {
      signal?.throwIfAborted();
      await this.begin(digest, sizeBytes);
      entry = this.catalog.current(digest);
    } catch (err) {
      destroyQuietly(source);
      throw signal?.aborted === true ? signal.reason : err;
    }
    // An ingest hashes the whole blob as it goes: nothing to wait for.
    this.whole.resume(entry);
    await this.writing.ingest(entry, sizeBytes, source, signal, options.onChunk);
  }

  isDigestVerified(digest: Digest): boolean {
    const entry = this.catalog.entries.get(digest);
    return entry !== undefined && this.whole.digestVerified(entry);
  }

  resumeWholeDigest(digest: Digest): void {
    const entry = this.catalog.entries.get(digest);
    if (entry !== undefined) this.whole.resume(entry);
  }

  hasPiece(digest: Digest, index: number): boolean {
    const entry = this.catalog.entries.get(digest);
    if (entry === undefined || !Number.isInteger(index) || index < 0 || index >= entry.layout.pieceCount) return false;
    return entry.complete || testBit(entry.verified, index);
  }

  openReader(digest: Digest, range?: { start: number; end: number }): ChunkReader {
    return this.reading.openReader(digest, range);
  }

  openPieceReader(digest: Digest, index: number, range?: { start: number; end: number }): ChunkReader {
    return this.reading.openPieceReader(digest, index, range);
  }

  waitForPiece(digest: Digest, index: number, options: { signal?: AbortSignal } = {}): Promise<void> {
    return this.waitPiece(digest, index, false, options.signal);
  }

  waitForPieceOrIngest(digest: Digest, index: number, options: { signal?: AbortSignal } = {}): Promise<void> {
    return this.waitPiece(digest, index, true, options.signal);
  }

  /** Until piece `index` is verified, or (`orArriving`) the ingest also began receiving it. */
  private async waitPiece(digest: Digest, index: number, orArriving: boolean, signal: AbortSignal | undefined): Promise<void> {
    const { catalog } = this;
    const entry = catalog.entries.get(digest);
    if (entry === undefined) throw new BlobUnknownError(digest);
    spanOf(entry, index);
    if (entry.complete || testBit(entry.verified, index)) return;
    if (orArriving && entry.write.arriving.get(index)?.readable === true) return;
    catalog.assertOpen();
    return catalog.waiters.wait(digest, orArriving ? arrivingKey(index) : index, signal);
  }

  openIngestingPiece(digest: Digest, index: number): IngestingPieceReader | undefined {
    const { catalog } = this;
    catalog.assertOpen();
    const entry = catalog.entries.get(digest);
    const piece = entry?.write.arriving.get(index);
    if (entry === undefined || piece === undefined || !piece.readable) return undefined;
    entry.read.open++;
    const last = piece.offset + piece.length - 1;
    return new IngestTailReader(
      digest,
      piece,
      (from) => this.reading.openPieceReader(digest, index, { start: piece.offset + from, end: last }),
      () => {
        entry.read.open--;
      },
    );
  }

  async waitForVerified(digest: Digest, options: { signal?: AbortSignal } = {}): Promise<void> {
    const { catalog } = this;
    const entry = catalog.entries.get(digest);
    if (entry === undefined) throw new BlobUnknownError(digest);
    if (this.whole.digestVerified(entry)) return;
    catalog.assertOpen();
    return catalog.waiters.wait(digest, DIGEST_VERIFIED, options.signal);
  }

  async waitForComplete(digest: Digest, options: { signal?: AbortSignal } = {}): Promise<void> {
    const { catalog } = this;
    const entry = catalog.entries.get(digest);
    if (entry === undefined) throw new BlobUnknownError(digest);
    if (entry.complete) return;
    catalog.assertOpen();
    return catalog.waiters.wait(digest, COMPLETE, options.signal);
  }

  async delete(digest: Digest): Promise<void> {
    this.catalog.assertOpen();
    await this.pendingBegins.get(digest)?.catch(noop);
    const entry = this.catalog.entries.get(digest);
    if (entry === undefined) return;
    await this.catalog.discard(entry, new BlobUnknownError(digest, { cause: new Error('deleted') }), 'info');
  }

  list(): Array<{ digest: Digest; sizeBytes: number; complete: boolean; lastAccessMs: number }> {
    return [...this.catalog.entries.values()].map((e) => ({
      digest: e.digest,
      sizeBytes: e.layout.blobSizeBytes,
      complete: e.complete,
      lastAccessMs: e.lastAccessMs,
    }));
  }

  usage(): StoreUsage {
    return { bytes: this.catalog.heldBytes, quotaBytes: this.quota.init.quotaBytes, blobs: this.catalog.entries.size };
  }

  close(): Promise<void> {
    this.closePromise ??= this.shutdown();
    return this.closePromise;
  }

  private async shutdown(): Promise<void> {
    const { catalog } = this;
    const reason = new Error('piece store closed');
    catalog.closing.abort(reason);
    catalog.flushDelayed();
    catalog.waiters.rejectEverything(reason);
    while (catalog.background.size > 0 || catalog.chains.size > 0) {
      await Promise.allSettled([...catalog.background, ...catalog.chains.values()]);
    }
    for (const entry of catalog.entries.values()) await this.writing.closeWriteHandle(entry);
    for (const entry of catalog.entries.values()) {
      if (!entry.accessDirty) continue;
      await catalog.db.put(entry.digest, encodeRecord(entry)).catch((err: unknown) => catalog.log.warn({ digest: entry.digest, err }, 'could not save last access'));
    }
    await catalog.db.close();
    catalog.log.debug('piece store closed');
  }
}
