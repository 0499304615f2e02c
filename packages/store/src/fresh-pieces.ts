import type { Entry } from './entry.js';
import { givePieceBuffer, takePieceBuffer } from './piece-buffers.js';

/**
 * Memory for pieces just verified, in bytes (32 MiB: 32 pieces of 1 MiB, the
 * piece size of every blob up to 256 MiB, or 4 of the largest, 8 MiB). The
 * services turn the cache on with this budget; a store opened without
 * `freshPieceBytes` keeps none.
 */
export const DEFAULT_FRESH_PIECE_BYTES = 32 * 1024 * 1024;
/** A piece is held in memory only when at least this many of its size fit the budget (every piece size, under the default). */
const MIN_PIECES_IN_BUDGET = 4;
/**
 * A piece no reader has taken yet is dropped to make room only once it has
 * waited this long, in milliseconds: a reader that lags behind the writer
 * finds the pieces it asks for next, and the newest ones go to disk only
 * instead of pushing those out.
 */
const UNREAD_KEEP_MS = 2_000;

/** A verified piece's bytes, held in memory: `buffer[0, length)`. */
export interface FreshPiece {
  readonly buffer: Buffer;
  readonly length: number;
}

interface Held extends FreshPiece {
  readonly entry: Entry;
  readonly index: number;
  /** Readers copying out of `buffer`: it goes back to the pool only when none is left. */
  pins: number;
  /** Still in the cache (counts against the budget). */
  cached: boolean;
  /** A reader took it (the whole-digest pass does not count). */
  taken: boolean;
  /** When it entered the cache (performance.now()). */
  readonly sinceMs: number;
}

/**
 * A piece's bytes, copied into a pooled buffer as they are hashed while the
 * piece is written; the writer writes the piece to disk from this buffer, so
 * the network's chunks are free at once (chunks held until a disk write, or
 * by the cache, live long enough to cost full garbage collections). They enter
 * the cache only through `keep`, which the writer calls once the piece matched
 * its hash and is on disk; every other ending calls `drop`.
 */
export class PieceCapture {
  private written = 0;
  private settled = false;

  constructor(
    private readonly owner: FreshPieces,
    readonly buffer: Buffer,
    readonly length: number,
  ) {}

  /** Bytes of the piece in `buffer` so far. */
  get filled(): number {
    return this.written;
  }

  /** Whether every byte of the piece is in `buffer`. */
  get full(): boolean {
    return this.written === this.length;
  }

  /** The next bytes of the piece (the writer refuses bytes past the piece's end before they come here). */
  write(chunk: Buffer): void {
    if (this.settled) return;
    if (this.written + chunk.length > this.length) throw new RangeError(`${this.written + chunk.length} bytes for a piece of ${this.length}`);
    chunk.copy(this.buffer, this.written);
    this.written += chunk.length;
  }

  /** Piece `index` of `entry` matched its hash with exactly these bytes: readers may have them from memory. */
  keep(entry: Entry, index: number): void {
    if (this.settled) return;
    this.settled = true;
    if (this.written !== this.length) this.owner.release(this.buffer);
    else this.owner.hold(entry, index, this.buffer, this.length);
  }

  /** The piece failed or was not kept: the buffer goes back. Idempotent; call it only once no write uses the buffer. */
  drop(): void {
    if (this.settled) return;
    this.settled = true;
    this.owner.release(this.buffer);
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
 * Bounded: capture buffers of pieces being written and cached pieces together
 * stay within `maxBytes`. Room is made by dropping pieces a reader took, then
 * unread pieces older than UNREAD_KEEP_MS, oldest first; a piece that finds no
 * room is written from the network's chunks and not kept. A dropped piece's
 * buffer goes back to the pool only once no reader copies out of it (pinned);
 * readers are bounded by their callers.
 */
export class FreshPieces {
  private readonly byEntry = new Map<Entry, Map<number, Held>>();
  /** Cached pieces, oldest first. */
  private readonly order = new Set<Held>();
  /** Bytes of capture buffers and cached pieces (whole buffers). */
  private used = 0;

  constructor(readonly maxBytes: number) {}

  /** Bytes held against the budget (for tests). */
  get usedBytes(): number {
    return this.used;
  }

  /** A capture for a piece of `length` bytes in a buffer of `bufferBytes` (the blob's piece size), or undefined when it does not fit. */
  capture(bufferBytes: number, length: number): PieceCapture | undefined {
    if (bufferBytes * MIN_PIECES_IN_BUDGET > this.maxBytes || length > bufferBytes) return undefined;
    for (const held of this.order) {
      if (this.used + bufferBytes <= this.maxBytes) break;
      if (held.taken) this.uncache(held);
    }
    const now = performance.now();
    for (const held of this.order) {
      if (this.used + bufferBytes <= this.maxBytes || now - held.sinceMs < UNREAD_KEEP_MS) break;
      this.uncache(held);
    }
    if (this.used + bufferBytes > this.maxBytes) return undefined;
    this.used += bufferBytes;
    return new PieceCapture(this, takePieceBuffer(bufferBytes), length);
  }

  /** Piece `index` of `entry` for a reader, pinned (unpin it once done with its bytes), or undefined. */
  take(entry: Entry, index: number): FreshPiece | undefined {
    const held = this.byEntry.get(entry)?.get(index);
    if (held === undefined) return undefined;
    held.pins++;
    held.taken = true;
    return held;
  }

  unpin(piece: FreshPiece): void {
    const held = piece as Held;
    held.pins--;
    if (held.pins === 0 && !held.cached) givePieceBuffer(held.buffer);
  }

  /** Piece `index` of `entry` for a synchronous use (no pin: nothing can reuse it before the caller returns). */
  peek(entry: Entry, index: number): FreshPiece | undefined {
    return this.byEntry.get(entry)?.get(index);
  }

  /** The blob completed or went: its pieces leave memory. */
  forget(entry: Entry): void {
    const pieces = this.byEntry.get(entry);
    if (pieces === undefined) return;
    for (const held of pieces.values()) this.uncache(held);
  }

  /** See PieceCapture.keep. */
  hold(entry: Entry, index: number, buffer: Buffer, length: number): void {
    // A blob already complete or gone is read from disk: a piece kept for it now would never be dropped.
    if (entry.complete || entry.discardReason !== undefined) {
      this.release(buffer);
      return;
    }
    let pieces = this.byEntry.get(entry);
    if (pieces === undefined) this.byEntry.set(entry, (pieces = new Map()));
    const previous = pieces.get(index);
    if (previous !== undefined) this.uncache(previous);
    const held: Held = { entry, index, buffer, length, pins: 0, cached: true, taken: false, sinceMs: performance.now() };
    pieces.set(index, held);
    this.order.add(held);
  }

  /** A capture ended without its piece being kept. */
  release(buffer: Buffer): void {
    this.used -= buffer.length;
    givePieceBuffer(buffer);
  }

  private uncache(held: Held): void {
    if (!held.cached) return;
    held.cached = false;
    this.order.delete(held);
    this.used -= held.buffer.length;
    const pieces = this.byEntry.get(held.entry);
    if (pieces?.get(held.index) === held) {
      pieces.delete(held.index);
      if (pieces.size === 0) this.byEntry.delete(held.entry);
    }
    if (held.pins === 0) givePieceBuffer(held.buffer);
  }
}
