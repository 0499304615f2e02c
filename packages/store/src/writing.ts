import { createHash, type Hash } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { addAbortSignal, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  abortable,
  BadRequestError,
  BlobUnknownError,
  chunksOf,
  destroyQuietly,
  DigestMismatchError,
  pieceSpan,
  SizeMismatchError,
  type Digest,
  type PieceLayout,
} from '@shoal/core';
import { isDiskFull, type Catalog } from './catalog.js';
import { newEntry, noop, spanOf, toError, type Entry } from './entry.js';
import type { PieceCapture } from './fresh-pieces.js';
import { IngestingPiece } from './ingest-tail.js';
import { PositionalWriter, writePiece } from './positional-writer.js';
import { encodeRecord, SHA256_HEX_RE, testBit } from './record.js';
import { arrivingKey } from './waiters.js';
import type { ExpectedSha256 } from './types.js';
import type { WholeDigest } from './whole-digest.js';

/**
 * Verified pieces are recorded in the db at most this often per blob, in
 * milliseconds: one write of the record (every piece hash) covers all the
 * pieces verified meanwhile. A crash loses the record of at most this window's
 * pieces, which are fetched again.
 */
export const RECORD_FLUSH_DELAY_MS = 250;

/** A blob's write descriptor is closed after this long without a writer. */
const WRITE_HANDLE_IDLE_MS = 1_000;

/** A blob's writers and its shared write descriptor; changed only here. */
export interface WriteState {
  /** writePiece/ingest calls in progress: the blob must not be evicted. */
  writers: number;
  /** The partial file, open for writing while pieces are written (one descriptor per blob, not per piece). */
  handle: Promise<FileHandle> | undefined;
  /** Closes `handle` once the blob has had no writer for WRITE_HANDLE_IDLE_MS (one timer per blob, not per piece). */
  idleCloseTimer: NodeJS.Timeout | undefined;
  /** Tail of each piece's write queue (absent when nobody writes it). */
  readonly pieceLocks: Map<number, Promise<void>>;
  /**
   * Pieces being received now, open to cut-through readers (ingest-tail.ts): the
   * one the back-to-source ingest is on, and each one a writePiece is streaming.
   */
  readonly arriving: Map<number, IngestingPiece>;
}

export function newWriteState(): WriteState {
  return { writers: 0, handle: undefined, idleCloseTimer: undefined, pieceLocks: new Map(), arriving: new Map() };
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
  /** The current piece's bytes, written to disk from there once it matched (when it `writes` and the fresh-piece cache has room; else `writer`). */
  capture: PieceCapture | undefined;
}

/** What writing needs from the quota part. */
export interface WritingParts {
  /** Handles a full disk met while writing `entry` (see Quota.diskFull). */
  diskFull(entry: Entry | undefined, digest: Digest, err: unknown): Promise<Error>;
}

/**
 * Piece writing: creating a blob's sparse partial file and record, streaming
 * pieces into it while hashing them (writePiece), and the back-to-source
 * ingest of a whole blob in order. A piece becomes readable once its bytes hashed
 * to the expected SHA-256; its record follows in the background.
 */
export class Writing {
  constructor(
    private readonly catalog: Catalog,
    private readonly whole: WholeDigest,
    private readonly parts: WritingParts,
  ) {}

  /** Creates the partial file and record (inside the digest's queue), or returns the entry held already. */
  async create(digest: Digest, layout: PieceLayout): Promise<Entry> {
    const { catalog } = this;
    const existing = catalog.entries.get(digest);
    if (existing !== undefined) return existing;
    catalog.assertOpen();
    const entry = newEntry(digest, layout, catalog.clock.now());
    const path = catalog.partialPath(digest);
    const fh = await open(path, 'w');
    try {
      // Sparse: pieces land at their offsets in any order without preallocating the disk.
      await fh.truncate(layout.blobSizeBytes);
    } finally {
      await fh.close();
    }
    try {
      await catalog.db.put(digest, encodeRecord(entry));
    } catch (err) {
      await rm(path, { force: true });
      throw err;
    }
    catalog.hold(entry);
    catalog.log.debug({ digest, sizeBytes: layout.blobSizeBytes, pieceCount: layout.pieceCount }, 'blob begun');
    if (layout.pieceCount === 0) catalog.track(this.whole.kick(entry));
    return entry;
  }

  async writePiece(
    digest: Digest,
    index: number,
    source: Readable,
    options: { expectedSha256?: ExpectedSha256; signal?: AbortSignal } = {},
  ): Promise<void> {
    const { signal } = options;
    const { catalog } = this;
    let unlock: (() => void) | undefined;
    let entry: Entry | undefined;
    try {
      catalog.assertOpen();
      signal?.throwIfAborted();
      entry = catalog.current(digest);
      entry.write.writers++;
      catalog.touch(entry);
      const span = spanOf(entry, index);
      const expected = expectedSha256(entry, index, options.expectedSha256);
      unlock = await this.lockPiece(entry, index, signal);
      catalog.assertCurrent(entry);
      if (entry.complete || testBit(entry.verified, index)) {
        await drain(source, signal);
        return;
      }
      await this.streamPiece(entry, index, span, expected, source, signal);
    } catch (err) {
      destroyQuietly(source);
      if (signal?.aborted === true) throw signal.reason;
      if (isDiskFull(err)) throw await this.parts.diskFull(entry, digest, err);
      // Discarded while we wrote (its file closed under us): say why, once its files are gone.
      if (entry !== undefined && !catalog.isCurrent(entry) && entry.discardReason !== undefined) {
        await entry.discarded;
        throw entry.discardReason;
      }
      throw err;
    } finally {
      unlock?.();
      if (entry !== undefined) this.writerDone(entry);
    }
  }

  /** Ingest into a blob already begun (see PieceStoreApi.ingest). */
  async ingest(entry: Entry, sizeBytes: number, source: Readable, signal: AbortSignal | undefined, onChunk: ((bytes: number) => void) | undefined): Promise<void> {
    entry.write.writers++;
    this.catalog.touch(entry);
    try {
      await this.ingestInto(entry, sizeBytes, source, signal, onChunk);
    } finally {
      this.writerDone(entry);
    }
  }

  private async ingestInto(entry: Entry, sizeBytes: number, source: Readable, signal: AbortSignal | undefined, onChunk: ((bytes: number) => void) | undefined): Promise<void> {
    const { digest } = entry;
    const { catalog } = this;
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
      capture: undefined,
    };
    let failure: { reason: unknown } | undefined;
    // A plain loop, not a stream pipeline into a Writable: per-chunk stream machinery cost as much as the writes;
    // and chunk by chunk (chunksOf), never a join of the chunks that waited (a copy of them).
    if (signal !== undefined) addAbortSignal(signal, source);
    try {
      for await (const chunk of chunksOf(source)) {
        onChunk?.(chunk.length);
        await this.ingestChunk(entry, state, chunk, signal);
      }
      if (state.totalBytes !== sizeBytes) throw new SizeMismatchError(`${digest}: got ${state.totalBytes} bytes, expected ${sizeBytes}`);
      // Every piece left a hint, so this step only chains hashes and compares the digest.
      await this.whole.kick(entry);
      if (!entry.complete) throw entry.discardReason ?? new BlobUnknownError(digest);
    } catch (err) {
      destroyQuietly(source);
      failure = { reason: signal?.aborted === true ? signal.reason : err };
    } finally {
      const tail = entry.write.arriving.get(state.index);
      if (tail !== undefined) this.endTail(entry, tail, failure === undefined ? undefined : toError(failure.reason));
      await state.writer?.settle();
      state.capture?.drop();
      state.unlock?.();
    }
    if (failure === undefined) return;
    let { reason } = failure;
    if (signal?.aborted !== true && isDiskFull(reason)) reason = await this.parts.diskFull(entry, digest, reason);
    // A second ingest failing must not throw away a blob the first one completed
    // (a discard already under way is waited for).
    else if (!catalog.isCurrent(entry) || !entry.complete) await catalog.discard(entry, toError(reason));
    throw reason;
  }

  private async streamPiece(
    entry: Entry,
    index: number,
    span: { offset: number; length: number },
    expected: () => string | Promise<string>,
    source: Readable,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const hint = this.whole.hintBase(entry, span.offset);
    const pieceHash = createHash('sha256');
    // With a capture the piece goes to disk from its buffer once it matched (the
    // network's chunks are free at once); without one, chunks go to disk as they come.
    const capture = this.catalog.fresh.capture(entry.layout.pieceSizeBytes, span.length);
    const writer = capture === undefined ? new PositionalWriter(await this.openForWrite(entry), span.offset) : undefined;
    // Captured bytes may be passed on to other peers as they come (cut-through);
    // a reader gets the end of the piece only once it matched.
    const tail = capture === undefined ? undefined : this.beginTail(entry, index, capture);
    let failure: Error | undefined;
    let bytes = 0;
    // A plain loop, not a stream pipeline: per-chunk stream machinery cost more than the hashing;
    // and chunk by chunk (chunksOf), never a join of the chunks that waited (a copy of them).
    if (signal !== undefined) addAbortSignal(signal, source);
    try {
      try {
        for await (const chunk of chunksOf(source)) {
          bytes += chunk.length;
          // Refuse before writing: extra bytes would land on the next piece.
          if (bytes > span.length) throw new SizeMismatchError(`piece ${index} of ${entry.digest}: more than ${span.length} bytes`);
          pieceHash.update(chunk);
          hint?.update(chunk);
          if (capture !== undefined) {
            capture.write(chunk);
            tail?.progressed();
          } else await (writer as PositionalWriter).push(chunk);
        }
        await writer?.flush();
      } finally {
        await writer?.settle();
      }
      if (bytes !== span.length) throw new SizeMismatchError(`piece ${index} of ${entry.digest}: got ${bytes} bytes, expected ${span.length}`);
      const actual = pieceHash.digest('hex');
      const want = await expected();
      if (actual !== want) throw new DigestMismatchError(`piece ${index} of ${entry.digest} hashed to ${actual}, expected ${want}`);
      // Every byte is in: the buffer is about to pass on, so cut-through readers wait for the verdict.
      tail?.seal();
      if (capture !== undefined) await writePiece(await this.openForWrite(entry), capture.buffer.subarray(0, span.length), span.offset);
      await this.markVerified(entry, index, actual, hint, capture);
      if (tail !== undefined) this.endTail(entry, tail, undefined, actual);
    } catch (err) {
      failure = toError(err);
      throw err;
    } finally {
      if (tail !== undefined) this.endTail(entry, tail, failure ?? new Error('the piece write ended'));
      // Kept by markVerified once the piece matched and is on disk; any other ending gives the buffer back.
      capture?.drop();
    }
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
        this.catalog.assertCurrent(entry);
        state.writes = !entry.complete && !testBit(entry.verified, state.index);
        state.pieceHash = createHash('sha256');
        state.pieceBytes = 0;
        if (state.writes) state.capture = this.catalog.fresh.capture(layout.pieceSizeBytes, pieceSpan(layout, state.index).length);
        if (state.capture !== undefined) this.beginTail(entry, state.index, state.capture);
      }
      const span = pieceSpan(layout, state.index);
      const take = Math.min(span.length - state.pieceBytes, chunk.length - at);
      const part = chunk.subarray(at, at + take);
      state.pieceHash.update(part);
      state.blobHash.update(part);
      if (state.capture !== undefined) {
        state.capture.write(part);
        entry.write.arriving.get(state.index)?.progressed();
      } else if (state.writes) {
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
    const capture = state.capture;
    state.capture = undefined;
    if (state.writes) {
      // Every byte is in: the buffer is about to pass to the fresh-piece cache (or back
      // to the pool), so cut-through readers stop copying from it and wait for the verdict.
      const tail = entry.write.arriving.get(index);
      tail?.seal();
      try {
        if (capture !== undefined) await writePiece(await this.openForWrite(entry), capture.buffer.subarray(0, capture.length), offset);
        await this.markVerified(entry, index, sha, hint, capture);
        if (tail !== undefined) this.endTail(entry, tail, undefined, sha);
      } finally {
        capture?.drop();
      }
    } else if (this.whole.wantsHintAt(entry, offset)) {
      this.whole.offerHint(entry, index, hint);
      this.catalog.track(this.whole.kick(entry));
    }
    state.unlock?.();
    state.unlock = undefined;
    state.pieceHash = undefined;
    state.index++;
  }

  /** A piece begins to arrive into `capture`: cut-through readers may follow it (PieceStoreApi.openIngestingPiece). */
  private beginTail(entry: Entry, index: number, capture: PieceCapture): IngestingPiece {
    const span = pieceSpan(entry.layout, index);
    const tail = new IngestingPiece(index, span.offset, span.length, capture);
    entry.write.arriving.set(index, tail);
    this.catalog.waiters.resolve(entry.digest, arrivingKey(index));
    this.catalog.events.emit('arriving', entry.digest, index);
    return tail;
  }

  /**
   * A piece stopped arriving: verified as `sha256`, or failed (`reason`), which
   * fails its cut-through readers and is announced (`arrivalFailed`) unless the
   * piece is held anyway.
   */
  private endTail(entry: Entry, tail: IngestingPiece, reason: Error | undefined, sha256?: string): void {
    if (entry.write.arriving.get(tail.index) !== tail) return;
    entry.write.arriving.delete(tail.index);
    if (sha256 !== undefined) {
      tail.verified(sha256);
      return;
    }
    tail.failed(reason ?? new Error('the piece stopped arriving before it was verified'));
    if (!entry.complete && !testBit(entry.verified, tail.index)) this.catalog.events.emit('arrivalFailed', entry.digest, tail.index);
  }

  private async markVerified(entry: Entry, index: number, sha: string, hint: Hash | undefined, capture: PieceCapture | undefined): Promise<void> {
    const { catalog } = this;
    catalog.recordVerified(entry, index, sha);
    // Only now, with the piece matched: its readers find it in memory from the first one.
    capture?.keep(entry, index);
    this.whole.offerHint(entry, index, hint);
    // The bytes are written and verified: readers may have them now. The record
    // follows in the background, at most every RECORD_FLUSH_DELAY_MS per blob
    // (one db write of the whole record covers every piece verified meanwhile)
    // instead of one db write per piece, which capped a blob's fill rate and
    // cost CPU per piece. A crash before the write only forgets pieces
    // (fetched again); nothing unverified ever becomes readable.
    catalog.events.emit('piece', entry.digest, index);
    catalog.waiters.resolve(entry.digest, index);
    catalog.waiters.resolve(entry.digest, arrivingKey(index));
    catalog.track(this.whole.kick(entry));
    catalog.track(
      catalog.persist(entry, RECORD_FLUSH_DELAY_MS).catch(async (err: unknown) => {
        if (!catalog.isCurrent(entry)) return;
        const reason = isDiskFull(err) ? await this.parts.diskFull(entry, entry.digest, err) : toError(err);
        catalog.log.warn({ digest: entry.digest, err: reason.message }, 'could not record verified pieces; blob discarded');
        if (catalog.isCurrent(entry)) await catalog.discard(entry, reason);
      }),
    );
  }

  /**
   * The blob's partial file open for writing, shared by its writers (opened
   * once, closed by finalize, discard or close), and only while it still
   * belongs to `entry` (not to a blob begun again after a discard).
   */
  private async openForWrite(entry: Entry): Promise<FileHandle> {
    const { catalog } = this;
    const state = entry.write;
    catalog.assertCurrent(entry);
    if (state.handle === undefined) {
      const opening = open(catalog.partialPath(entry.digest), 'r+');
      state.handle = opening;
      opening.catch(() => {
        if (state.handle === opening) state.handle = undefined;
      });
    }
    const fh = await state.handle;
    catalog.assertCurrent(entry);
    return fh;
  }

  /** Every piece is written and matched: the bytes are made durable and the descriptor closed (before the rename into blobs/). */
  async syncAndClose(entry: Entry): Promise<void> {
    // Every piece is written, so the shared descriptor has no writer left.
    const fh = await this.openForWrite(entry);
    try {
      await fh.datasync();
    } finally {
      await this.closeWriteHandle(entry);
    }
  }

  /**
   * A writer finished: with none left for WRITE_HANDLE_IDLE_MS the blob's write
   * descriptor is closed, so blobs left partial (a download given up) do not
   * each keep a descriptor open until they are completed or evicted.
   */
  private writerDone(entry: Entry): void {
    const state = entry.write;
    state.writers--;
    if (state.writers > 0 || state.handle === undefined || state.idleCloseTimer !== undefined) return;
    state.idleCloseTimer = setTimeout(() => {
      state.idleCloseTimer = undefined;
      // A writer still at work sets a new timer when it finishes.
      if (state.writers > 0) return;
      this.catalog.track(this.closeWriteHandle(entry));
    }, WRITE_HANDLE_IDLE_MS);
    state.idleCloseTimer.unref();
  }

  /** Closes the shared write descriptor (FileHandle.close waits for writes in flight). */
  async closeWriteHandle(entry: Entry): Promise<void> {
    const handle = entry.write.handle;
    entry.write.handle = undefined;
    if (handle === undefined) return;
    const fh = await handle.catch(() => undefined);
    await fh?.close().catch((err: unknown) => this.catalog.log.warn({ digest: entry.digest, err }, 'closing a partial file failed'));
  }

  /** Whether anyone writes the blob or waits to write one of its pieces. */
  busy(entry: Entry): boolean {
    return entry.write.writers > 0 || entry.write.pieceLocks.size > 0;
  }

  /** Serializes writers of one piece; the lock is released by calling the returned function. */
  private async lockPiece(entry: Entry, index: number, signal: AbortSignal | undefined): Promise<() => void> {
    const locks = entry.write.pieceLocks;
    const previous = locks.get(index);
    let release: () => void = noop;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous === undefined ? mine : previous.then(() => mine);
    locks.set(index, tail);
    const unlock = (): void => {
      release();
      if (locks.get(index) === tail) locks.delete(index);
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
}

/** The expected hash of a piece, as a function asked once its bytes have ended (see ExpectedSha256). */
function expectedSha256(entry: Entry, index: number, given: ExpectedSha256 | undefined): () => string | Promise<string> {
  if (typeof given === 'function') {
    return () => {
      const late = given();
      return typeof late === 'object' ? late.then((sha) => lateSha256(entry, index, sha)) : lateSha256(entry, index, late);
    };
  }
  const sha = checkedSha256(entry, index, given);
  return () => sha;
}

/** A hash given after the bytes: the recorded one when none came (else the piece is refused). */
function lateSha256(entry: Entry, index: number, late: string | undefined): string {
  const known = entry.pieceSha256[index] ?? null;
  if (late !== undefined) return checkedSha256(entry, index, late);
  if (known !== null) return known;
  throw new DigestMismatchError(`piece ${index} of ${entry.digest}: no hash came with its bytes`);
}

function checkedSha256(entry: Entry, index: number, given: string | undefined): string {
  const known = entry.pieceSha256[index] ?? null;
  if (given === undefined) {
    if (known === null) throw new BadRequestError(`piece ${index} of ${entry.digest}: no expected hash known or given`);
    return known;
  }
  if (!SHA256_HEX_RE.test(given)) throw new BadRequestError(`piece ${index} of ${entry.digest}: invalid sha256 ${JSON.stringify(given.slice(0, 80))}`);
  if (known !== null && known !== given) throw new DigestMismatchError(`piece ${index} of ${entry.digest}: expected hash ${given} contradicts the recorded ${known}`);
  return given;
}

export function drain(source: Readable, signal: AbortSignal | undefined): Promise<void> {
  return pipeline(source, new Writable({ write: (_chunk, _encoding, done) => done() }), { signal });
}
