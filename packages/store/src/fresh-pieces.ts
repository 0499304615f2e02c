import type { Entry } from './entry.js';

/**
 * Memory for pieces just verified, in bytes (32 MiB: 32 pieces of 1 MiB, the
 * piece size of every blob up to 1 GiB). The services turn the cache on with
 * this budget; a store opened without `freshPieceBytes` keeps none.
 */
export const DEFAULT_FRESH_PIECE_BYTES = 32 * 1024 * 1024;
/** A piece is held in memory only when at least this many of its size fit the budget (pieces of up to 8 MiB under the default). */
const MIN_PIECES_IN_BUDGET = 4;
/**
 * A piece no reader has taken yet is dropped to make room only once it has
 * waited this long, in milliseconds: a reader that lags behind the writer
 * finds the pieces it asks for next, and the newest ones wait for room (or go
 * to disk) instead of pushing those out.
 */
const UNREAD_KEEP_MS = 2_000;

/** A verified piece's bytes, held in memory: the chunks it arrived in, `length` bytes in all. */
export interface FreshPiece {
  readonly chunks: readonly Buffer[];
  readonly length: number;
}

interface Held extends FreshPiece {
  readonly entry: Entry;
  readonly index: number;
  /** Bytes reserved against the budget (the blob's piece size). */
  readonly reserved: number;
  /** Still in the cache (counts against the budget). */
  cached: boolean;
  /** A reader took it (the whole-digest pass does not count). */
  taken: boolean;
  /** When it entered the cache (performance.now()). */
  readonly sinceMs: number;
}

/**
 * One piece's bytes, kept as they are hashed while the piece is written (the
 * chunks themselves, not a copy: like the disk writer, the cache relies on a
 * stream never changing a chunk it has pushed). They enter the cache only
 * through `keep`, which the writer calls once the piece matched its hash;
 * every other ending calls `drop`.
 */
export class PieceCapture {
  private readonly chunks: Buffer[] = [];
  private filled = 0;
  private settled = false;

  constructor(
    private readonly owner: FreshPieces,
    private readonly reserved: number,
    readonly length: number,
  ) {}

  /** The next bytes of the piece (the writer refuses bytes past the piece's end before they come here). */
  write(chunk: Buffer): void {
    if (this.settled) return;
    if (this.filled + chunk.length > this.length) {
      this.drop();
      return;
    }
    this.chunks.push(chunk);
    this.filled += chunk.length;
  }

  /** Piece `index` of `entry` matched its hash with exactly these bytes: readers may have them from memory. */
  keep(entry: Entry, index: number): void {
    if (this.settled) return;
    this.settled = true;
    if (this.filled !== this.length) this.owner.release(this.reserved);
    else this.owner.hold(entry, index, this.chunks, this.length, this.reserved);
  }

  /** The piece failed or was not kept: its reservation ends. Idempotent. */
  drop(): void {
    if (this.settled) return;
    this.settled = true;
    this.chunks.length = 0;
    this.owner.release(this.reserved);
  }
}

/**
 * Pieces just verified, kept in memory for the readers right behind the
 * writer: the proxy streaming the blob to containerd, a peer asking for a
 * piece it was just told about, the whole-digest pass. They get the very bytes
 * that matched the piece's hash, without reading them back from disk and
 * hashing them again (a piece read from disk is checked at rest, reading.ts).
 *
 * Only pieces of blobs still being filled are held: a blob that completes or
 * goes drops its pieces, and later reads go to the disk and its check.
 *
 * Bounded: pieces being captured and cached pieces together stay within
 * `maxBytes`, each counted at the blob's piece size (the chunks may share a
 * socket read with a neighbouring piece: up to one read more per piece). Room
 * is made by dropping pieces a reader took, then unread pieces older than
 * UNREAD_KEEP_MS, oldest first; a piece that finds no room is simply not
 * captured. A dropped piece's chunks stay alive while a reader
 * still copies out of them; readers are bounded by their callers.
 */
export class FreshPieces {
  private readonly byEntry = new Map<Entry, Map<number, Held>>();
  /** Cached pieces, oldest first. */
  private readonly order = new Set<Held>();
  /** Bytes reserved by captures and cached pieces. */
  private used = 0;

  constructor(readonly maxBytes: number) {}

  /** Bytes held against the budget (for tests). */
  get usedBytes(): number {
    return this.used;
  }

  /** A capture for a piece of `length` bytes of a blob with pieces of `pieceBytes`, or undefined when it does not fit. */
  capture(pieceBytes: number, length: number): PieceCapture | undefined {
    if (pieceBytes * MIN_PIECES_IN_BUDGET > this.maxBytes || length > pieceBytes) return undefined;
    // Room from pieces a reader took first, then from unread ones that waited long enough, oldest first.
    for (const held of this.order) {
      if (this.used + pieceBytes <= this.maxBytes) break;
      if (held.taken) this.uncache(held);
    }
    const now = performance.now();
    for (const held of this.order) {
      if (this.used + pieceBytes <= this.maxBytes || now - held.sinceMs < UNREAD_KEEP_MS) break;
      this.uncache(held);
    }
    if (this.used + pieceBytes > this.maxBytes) return undefined;
    this.used += pieceBytes;
    return new PieceCapture(this, pieceBytes, length);
  }

  /** Piece `index` of `entry`, or undefined. Its chunks stay valid while the caller holds them, even once dropped from the cache. */
  get(entry: Entry, index: number): FreshPiece | undefined {
    return this.byEntry.get(entry)?.get(index);
  }

  /** get, for a reader: the piece becomes the first to make room. */
  take(entry: Entry, index: number): FreshPiece | undefined {
    const held = this.byEntry.get(entry)?.get(index);
    if (held !== undefined) held.taken = true;
    return held;
  }

  /** The blob completed or went: its pieces leave memory. */
  forget(entry: Entry): void {
    const pieces = this.byEntry.get(entry);
    if (pieces === undefined) return;
    for (const held of pieces.values()) this.uncache(held);
  }

  /** See PieceCapture.keep. */
  hold(entry: Entry, index: number, chunks: readonly Buffer[], length: number, reserved: number): void {
    // A blob already complete or gone is read from disk: a piece kept for it now would never be dropped.
    if (entry.complete || entry.discardReason !== undefined) {
      this.release(reserved);
      return;
    }
    let pieces = this.byEntry.get(entry);
    if (pieces === undefined) this.byEntry.set(entry, (pieces = new Map()));
    const previous = pieces.get(index);
    if (previous !== undefined) this.uncache(previous);
    const held: Held = { entry, index, chunks, length, reserved, cached: true, taken: false, sinceMs: performance.now() };
    pieces.set(index, held);
    this.order.add(held);
  }

  /** A capture ended without its piece being kept. */
  release(reserved: number): void {
    this.used -= reserved;
  }

  private uncache(held: Held): void {
    if (!held.cached) return;
    held.cached = false;
    this.order.delete(held);
    this.used -= held.reserved;
    const pieces = this.byEntry.get(held.entry);
    if (pieces?.get(held.index) === held) {
      pieces.delete(held.index);
      if (pieces.size === 0) this.byEntry.delete(held.entry);
    }
  }
}
