import { PieceUnavailableError, type ChunkReader, type Digest } from '@shoal/core';
import type { PieceCapture } from './fresh-pieces.js';

/**
 * Cut-through: the piece a back-to-source ingest is receiving right now, open
 * to readers before it is verified, so the supernode can pass each byte on as
 * it arrives from the registry instead of a whole piece later (at 10 Mbit/s a
 * 1 MiB piece is 0.8 s per hop, and five layers fetched side by side made the
 * first piece of each wait 4 s).
 *
 * The bytes come from the ingest's capture buffer (fresh-pieces.ts), copied
 * out synchronously, and only while the ingest still owns that buffer: from
 * the moment it hands the buffer on (kept in the fresh-piece cache once the
 * piece matched, or given back when it failed) `readable` is false, and a
 * reader with bytes left reads them from the verified piece instead.
 *
 * Settles once: `sha256` when the piece matched and is recorded (readable
 * from the store like any piece), or `failure` when the ingest stopped.
 */
export class IngestingPiece {
  private wakers: Array<() => void> = [];
  /** Whether `capture.buffer[0, filled)` may be read (the ingest still owns it). */
  readable = true;
  sha256: string | undefined;
  failure: Error | undefined;

  constructor(
    readonly index: number,
    readonly offset: number,
    readonly length: number,
    private readonly capture: PieceCapture,
  ) {}

  /** Bytes of the piece received so far. */
  get filled(): number {
    return this.capture.filled;
  }

  /** Copies piece bytes [from, from + into.length) that have arrived into `into`; 0 when none past `from` yet (or no longer readable). */
  copyOut(from: number, into: Buffer): number {
    if (!this.readable || from >= this.capture.filled) return 0;
    return this.capture.buffer.copy(into, 0, from, Math.min(this.capture.filled, from + into.length));
  }

  /** More bytes arrived. */
  progressed(): void {
    this.wakeAll();
  }

  /** Every byte is in and the ingest is about to hand the capture buffer on: no read may copy from it any more. */
  seal(): void {
    this.readable = false;
    this.wakeAll();
  }

  /** The piece matched `sha256` and is recorded. */
  verified(sha256: string): void {
    this.readable = false;
    this.sha256 ??= sha256;
    this.wakeAll();
  }

  /** The ingest stopped before the piece was verified. */
  failed(reason: Error): void {
    this.readable = false;
    if (this.sha256 === undefined) this.failure ??= reason;
    this.wakeAll();
  }

  /** Resolves at the next change (bytes, seal, settle). */
  changed(): Promise<void> {
    return new Promise<void>((resolve) => this.wakers.push(resolve));
  }

  private wakeAll(): void {
    // Called for every chunk the ingest captures: nothing to do (and no allocation) while nobody waits.
    if (this.wakers.length === 0) return;
    const wakers = this.wakers;
    this.wakers = [];
    for (const wake of wakers) wake();
  }
}

/** Bytes a cut-through read waits for before it returns (unless the piece has all arrived): 32 KiB is 10 ms at 25 Mbit/s. */
export const MIN_RELAY_READ_BYTES = 32 * 1024;

/**
 * Reads one ingesting piece from its first byte: bytes as they arrive, then,
 * for bytes left once the ingest has handed its buffer on, the verified piece
 * from the store (`openVerified`). The piece's last byte, and so the end,
 * wait until the piece is verified; `sha256` is known from then. A failed ingest
 * rejects the read with PieceUnavailableError.
 */
export class IngestTailReader implements ChunkReader {
  private position = 0;
  private rest: ChunkReader | undefined;
  private closed = false;

  constructor(
    private readonly digest: Digest,
    private readonly piece: IngestingPiece,
    /** A reader over piece bytes [from, end) once verified (the store's own, checked at rest). */
    private readonly openVerified: (from: number) => ChunkReader,
    private readonly onClose: () => void,
  ) {}

  /** The piece's hash once the reader has reached the end (its last read returned 0). */
  get sha256(): string | undefined {
    return this.position === this.piece.length ? this.piece.sha256 : undefined;
  }

  async read(into: Buffer): Promise<number> {
    for (;;) {
      if (this.closed) throw new PieceUnavailableError(this.digest, this.piece.index);
      if (this.rest !== undefined) {
        const count = await this.rest.read(into);
        this.position += count;
        return count;
      }
      const piece = this.piece;
      if (this.position < piece.length) {
        // The last byte waits for the verdict: a body with a length (a peer's) is
        // complete to its receiver once that byte is out, so bytes that fail never end one.
        const upTo = piece.sha256 === undefined ? piece.length - 1 : piece.length;
        const want = Math.min(into.length, upTo - this.position);
        // Bytes come off the network a few KiB at a time: handing each on at once would
        // cost the sender a socket write per few KiB. A read waits for a batch (or the
        // piece's end), which costs a hop a batch's time on the link, not a piece's.
        const ready = piece.readable ? piece.filled - this.position : 0;
        const count = ready >= Math.min(want, MIN_RELAY_READ_BYTES) || piece.filled === piece.length ? piece.copyOut(this.position, into.subarray(0, Math.max(0, want))) : 0;
        if (count > 0) {
          this.position += count;
          return count;
        }
        if (piece.sha256 !== undefined) {
          this.rest = this.openVerified(this.position);
          continue;
        }
      } else if (piece.sha256 !== undefined) {
        return 0;
      }
      if (piece.failure !== undefined) throw new PieceUnavailableError(this.digest, piece.index);
      await piece.changed();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.rest?.close();
    this.onClose();
  }
}
