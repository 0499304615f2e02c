import type { Readable } from 'node:stream';
import type { ChunkReader, Digest, PieceLayout } from '@shoal/core';

/**
 * Contract of the piece store (piece-store.ts is its front), shared by the
 * supernode's cache and every peer's node cache.
 *
 * On disk under `dir`:
 *   blobs/sha256/<hex>     complete blobs, whole-digest verified
 *   partial/sha256/<hex>   blobs being filled; bytes of a piece count only once
 *                          the piece is recorded as verified in the db
 *   db/                    `level` database: one record per blob (layout, piece
 *                          hashes, verified-piece bitmap, complete flag, last access)
 * File names come from validated digests only (never from raw input).
 *
 * Integrity rules:
 * - a piece is readable only after its bytes hashed to the expected SHA-256 and
 *   the record says so; unverified bytes on disk are never returned;
 * - a blob is complete only after every piece is verified AND the whole file
 *   hashed to the blob digest (computed incrementally as pieces become
 *   contiguous from the start, so completion costs no extra pass);
 * - a whole-digest mismatch discards the blob (files and record) and fails its waiters;
 * - every read for sending hashes each piece as it comes off the disk and hands
 *   its bytes out only once it matches the recorded hash: a blob changed at rest
 *   is discarded at the first read that meets the change, never served. A piece
 *   of a blob still being filled may instead come from memory (fresh-pieces.ts):
 *   the very bytes that matched its hash when it was written, never re-read.
 *
 * Disk rules:
 * - usage counts only the store's own blobs: complete ones and partial ones,
 *   each at its full size (a partial file is sparse but fills up to that size);
 * - with a quota, beginning a blob that takes usage past the high watermark
 *   first evicts whole idle blobs, least recently used first, until usage is
 *   below the low watermark; a blob being read (an open reader) or written
 *   (a write in flight, or waiters) is never evicted, nor is a partial blob
 *   touched recently (it is probably between two pieces);
 * - a write failing for lack of space (ENOSPC, EDQUOT, or no room under the
 *   quota) keeps nothing of the blob: it is discarded, idle blobs are evicted
 *   to make room for what comes next, and the caller gets StoreFullError;
 * - open checks the db against the files and repairs: a record whose file is
 *   missing or has the wrong size is dropped, a file without a record deleted.
 */
export interface BlobRecord {
  readonly digest: Digest;
  readonly layout: PieceLayout;
  /** Known hash of each piece (lowercase hex) or null while unknown. */
  readonly pieceSha256: ReadonlyArray<string | null>;
  /** Number of verified pieces. */
  readonly verifiedCount: number;
  readonly complete: boolean;
}

export interface PieceStoreEvents {
  /** A piece of `digest` was verified and may be read. */
  piece: [digest: Digest, index: number];
  /** A piece of `digest` began to arrive and may be read as it comes (openIngestingPiece). */
  arriving: [digest: Digest, index: number];
  /** A piece announced as `arriving` stopped before it was verified, and is not held. */
  arrivalFailed: [digest: Digest, index: number];
  /** The whole blob verified and moved into blobs/. */
  complete: [digest: Digest];
  /** The blob was discarded (whole-digest mismatch, delete, eviction, disk full). */
  discarded: [digest: Digest, reason: Error];
}

/**
 * A piece's expected SHA-256: known before its bytes, or (for a piece passed
 * on while it was still arriving) a function asked once the bytes have ended,
 * answering the hash that came after them (or a promise of the one being asked
 * for), or undefined when none came (the piece is then refused).
 */
export type ExpectedSha256 = string | (() => string | undefined | Promise<string | undefined>);

/** A cut-through read of a piece still arriving (see PieceStoreApi.openIngestingPiece). */
export interface IngestingPieceReader extends ChunkReader {
  /** The piece's hash, once the reader has reached the end (a read returned 0); undefined before. */
  readonly sha256: string | undefined;
}

/** What the store holds, for metrics. */
export interface StoreUsage {
  /** Sizes of the blobs held, complete and partial (each at its full size). */
  readonly bytes: number;
  /** The configured quota, undefined when unlimited. */
  readonly quotaBytes: number | undefined;
  /** Blobs held, complete and partial. */
  readonly blobs: number;
}

export interface PieceStoreApi {
  /** Metadata of a blob the store holds (complete or partial), or undefined. */
  get(digest: Digest): BlobRecord | undefined;
  /**
   * Creates the record and partial file for a blob of `sizeBytes` (layout from
   * pieceLayout), or returns the existing one. Evicts idle blobs when the quota
   * requires it; throws StoreFullError when there is no room even so.
   */
  begin(digest: Digest, sizeBytes: number): Promise<BlobRecord>;
  /**
   * Records hashes learned from the supernode (entries that are null are left
   * unknown). A hash that contradicts a recorded one throws DigestMismatchError.
   * `certified`: the list is complete and comes from a trusted holder that has
   * itself matched the whole blob to its digest (the supernode's complete
   * blob), so once every piece has matched these hashes the blob is complete
   * without hashing it whole a second time here.
   * `certificationExpected`: that holder is still matching the blob and will
   * certify these hashes when it has (a second call with `certified`): the
   * store does not hash the blob whole meanwhile, and does once
   * resumeWholeDigest says no certification is coming. The blob cannot
   * complete before one of the two.
   */
  setPieceHashes(digest: Digest, pieceSha256: ReadonlyArray<string | null>, options?: { certified?: boolean; certificationExpected?: boolean }): Promise<void>;
  /**
   * The certification announced with setPieceHashes is not coming (its holder
   * failed, or the download ended): the store hashes the blob whole itself.
   * A no-op for a blob certified, complete, unknown, or not waiting.
   */
  resumeWholeDigest(digest: Digest): void;
  /**
   * Whether the blob's bytes have matched its digest: true from that moment,
   * before `complete` (the datasync and rename that make it durable, which can
   * take seconds on a busy disk). False for an unknown blob.
   */
  isDigestVerified(digest: Digest): boolean;
  /**
   * Streams one piece from `source` into place while hashing it. Resolves once
   * it is verified and recorded (emitting 'piece'); rejects with
   * DigestMismatchError / SizeMismatchError (nothing recorded) when the bytes
   * are wrong, with StoreFullError when the disk is full (the blob is then
   * discarded), or with the abort reason. Writing an already-verified piece
   * drains `source` and resolves. The expected hash must be known
   * (setPieceHashes) or passed here; passed as a function, it is asked once
   * the bytes have ended (a hash that follows the bytes); one that contradicts
   * a recorded hash refuses the piece (DigestMismatchError), and none at all
   * leaves the recorded one, if any.
   */
  writePiece(digest: Digest, index: number, source: Readable, options?: { expectedSha256?: ExpectedSha256; signal?: AbortSignal }): Promise<void>;
  /**
   * Back-to-source ingest: streams a whole blob in order, recording each
   * piece's hash as it completes (emitting 'piece'), verifying length and
   * digest, and completing the blob. On failure the blob is discarded (a full
   * disk rejects with StoreFullError). `onChunk` is told each chunk's length
   * as it arrives from `source` (a progress meter without a stream between).
   */
  ingest(digest: Digest, sizeBytes: number, source: Readable, options?: { signal?: AbortSignal; onChunk?: (bytes: number) => void }): Promise<void>;
  hasPiece(digest: Digest, index: number): boolean;
  /**
   * The one way to read a blob for sending: bytes [start, end] (inclusive,
   * blob offsets; the whole blob without a range) read into the caller's
   * buffers. Works on a partial blob too: each read covers only verified
   * pieces and rejects with PieceUnavailableError at one that is not (wait for
   * it first). Every piece is hashed as it is read from disk and its bytes are
   * handed out only once it matched its recorded SHA-256; a piece changed at
   * rest rejects the read with CorruptAtRestError and drops the blob
   * ('discarded'). The blob is not evicted while the reader is open.
   */
  openReader(digest: Digest, range?: { start: number; end: number }): ChunkReader;
  /**
   * openReader over one piece (a range inside it, in blob offsets): throws
   * PieceUnavailableError at once when the piece is not verified here.
   */
  openPieceReader(digest: Digest, index: number, range?: { start: number; end: number }): ChunkReader;
  /**
   * Cut-through: piece `index` while it arrives (from the back-to-source
   * ingest, or a writePiece; held in memory as it comes), or undefined when it
   * is not arriving (not begun, verified already, or not held in memory). Reads
   * hand out the bytes that have arrived, before the piece is verified; the
   * read that returns 0 waits until the whole piece matched, and the reader's
   * `sha256` is then its hash. Reads reject with PieceUnavailableError when the
   * piece fails first. Whoever receives these bytes must check them against a
   * hash it trusts before using them: the supernode sends its own after them
   * (wire.ts, HEADER.pieceSha256 as a trailer); a peer's is never trusted.
   */
  openIngestingPiece(digest: Digest, index: number): IngestingPieceReader | undefined;
  /** As waitForPiece, but resolves as soon as the piece begins to arrive too (openIngestingPiece may then have it). */
  waitForPieceOrIngest(digest: Digest, index: number, options?: { signal?: AbortSignal }): Promise<void>;
  /** Resolves when the piece is verified; rejects if the blob is discarded or the signal aborts (BlobUnknownError at once for a blob not begun). */
  waitForPiece(digest: Digest, index: number, options?: { signal?: AbortSignal }): Promise<void>;
  /** Resolves when the blob is complete; rejects if it is discarded or the signal aborts (BlobUnknownError at once for a blob not begun). */
  waitForComplete(digest: Digest, options?: { signal?: AbortSignal }): Promise<void>;
  /** Resolves when the blob's bytes have matched its digest, possibly before `complete` (durable and renamed); rejects as waitForComplete does. */
  waitForVerified(digest: Digest, options?: { signal?: AbortSignal }): Promise<void>;
  /** Removes a blob's files and record. */
  delete(digest: Digest): Promise<void>;
  /** Every blob held, complete or partial (see `complete`), with size and last access: the input of LRU eviction. */
  list(): Array<{ digest: Digest; sizeBytes: number; complete: boolean; lastAccessMs: number }>;
  /** Bytes and blobs held against the quota. */
  usage(): StoreUsage;
  close(): Promise<void>;
}
