import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { SizeMismatchError, type ChunkReader, type Digest, type PieceLayout } from '@shoal/core';
import type { FreshPiece } from './fresh-pieces.js';
import { givePieceBuffer, takePieceBuffer } from './piece-buffers.js';

/** Bytes per read syscall while a piece is read and hashed (a piece of 1–8 MiB takes 1–8). */
const PIECE_READ_CHUNK_BYTES = 1024 * 1024;

/** What a RangeReader needs from the store. */
export interface RangeReaderSource {
  readonly digest: Digest;
  readonly layout: PieceLayout;
  /** Opens the blob's file (partial or complete: the store knows which). */
  open(): Promise<FileHandle>;
  /**
   * The SHA-256 recorded for piece `index`, which may be read. Throws when
   * it is not verified or the blob was discarded.
   */
  readablePiece(index: number): string;
  /**
   * Piece `index` (readable) still in memory as it matched its hash when it
   * was written, pinned until `unpin`; undefined when it must come from disk.
   */
  fresh(index: number): FreshPiece | undefined;
  /** Whether piece `index` is in memory now (nothing pinned): a piece there is not read ahead from disk. */
  inMemory?(index: number): boolean;
  unpin(piece: FreshPiece): void;
  /** Piece `index` read back from disk hashed to `actual`: drops the blob and answers the error to fail the read with. */
  corrupt(index: number, actual: string): Promise<Error>;
  /** Called once, when the reader closes. */
  release(): void;
}

/**
 * Reads bytes [start, endExclusive) of a stored blob into the caller's
 * buffers, one descriptor for the whole range. Every byte is verified before
 * it is handed out. A piece still in memory since it matched its hash (the
 * fresh-piece cache) is copied out of there. Any other piece is verified at
 * rest: the reader reads it whole into a pooled buffer, hashing it as it
 * reads, and copies bytes out only once the piece matched the SHA-256
 * recorded when it was stored. A piece that does not match fails the read
 * (the store drops the blob), so a byte that changed on disk never leaves;
 * an unverified piece is never read at all.
 *
 * While the caller takes a piece's bytes, the reader reads the next piece of
 * its range from disk into a second pooled buffer (not hashed yet: that
 * happens when the caller reaches it, as for any piece). The disk read then
 * overlaps the hashing and the socket writes instead of waiting behind them
 * (cached reads through a node agent: about 7–17 % faster, see "The cached
 * blob" in docs/benchmarks.md). A reader holds at most two piece buffers.
 */
export class RangeReader implements ChunkReader {
  private position: number;
  private handle: Promise<FileHandle> | undefined;
  private closed = false;
  /** The verified piece whose bytes are in `bytes` (the reader's own `buffer`, or a pinned fresh piece's), if any. */
  private held: { index: number; offset: number; length: number } | undefined;
  private bytes: Buffer | undefined;
  /** The reader's own pooled buffer, filled from disk. */
  private buffer: Buffer | undefined;
  /** The fresh piece `bytes` belongs to, pinned while held. */
  private pinned: FreshPiece | undefined;
  /** A piece being read into `buffer`: the buffer is given back only once it settles. */
  private loading: Promise<unknown> | undefined;
  /** The next piece, read from disk (not yet hashed) while this one is sent. */
  private ahead: { index: number; buffer: Buffer; read: Promise<boolean> } | undefined;

  constructor(
    private readonly source: RangeReaderSource,
    start: number,
    private readonly endExclusive: number,
  ) {
    this.position = start;
  }

  async read(into: Buffer): Promise<number> {
    this.assertOpen();
    if (this.position >= this.endExclusive) return 0;
    if (into.length === 0) throw new RangeError('read into an empty buffer');
    const { pieceSizeBytes } = this.source.layout;
    let filled = 0;
    while (filled < into.length && this.position < this.endExclusive) {
      const index = Math.floor(this.position / pieceSizeBytes);
      if (filled === 0) {
        // Asked again on every read: a partial blob discarded under the reader is no longer vouched for.
        this.source.readablePiece(index);
      }
      if (this.held?.index !== index) {
        // Stop before a piece that may not be read yet; the next read reports it.
        if (filled > 0 && !this.canRead(index)) break;
        await this.load(index);
      }
      const held = this.held as { index: number; offset: number; length: number };
      const count = Math.min(into.length - filled, held.offset + held.length - this.position, this.endExclusive - this.position);
      (this.bytes as Buffer).copy(into, filled, this.position - held.offset, this.position - held.offset + count);
      filled += count;
      this.position += count;
      if (this.position === held.offset + held.length) this.releaseBuffer();
    }
    return filled;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.source.release();
    this.releaseBuffer();
    this.dropAhead();
    // FileHandle.close waits for a read still in flight.
    this.handle?.then((handle) => handle.close()).catch(() => undefined);
  }

  /** A piece read out (or the reader closed): its buffer goes back to the pool, so an idle reader holds none. */
  private releaseBuffer(): void {
    const buffer = this.buffer;
    const pinned = this.pinned;
    this.buffer = undefined;
    this.pinned = undefined;
    this.bytes = undefined;
    this.held = undefined;
    if (pinned !== undefined) this.source.unpin(pinned);
    if (buffer === undefined) return;
    // A read still filling the buffer must finish before anyone else fills it.
    const loading = this.loading;
    if (loading === undefined) givePieceBuffer(buffer);
    else void loading.then(() => givePieceBuffer(buffer), () => givePieceBuffer(buffer));
  }

  private canRead(index: number): boolean {
    try {
      this.source.readablePiece(index);
      return true;
    } catch {
      return false;
    }
  }

  /** Reads piece `index` whole into the buffer while hashing it; holds it only when it matches its recorded hash. */
  private async load(index: number): Promise<void> {
    const expected = this.source.readablePiece(index);
    const { pieceSizeBytes, blobSizeBytes } = this.source.layout;
    const offset = index * pieceSizeBytes;
    const length = Math.min(pieceSizeBytes, blobSizeBytes - offset);
    this.held = undefined;
    this.bytes = undefined;
    if (this.pinned !== undefined) {
      this.source.unpin(this.pinned);
      this.pinned = undefined;
    }
    const fresh = this.source.fresh(index);
    if (fresh !== undefined && fresh.length !== length) this.source.unpin(fresh);
    else if (fresh !== undefined) {
      // The bytes that matched the hash when the piece was written, never on disk in between: no read, no second hash.
      this.pinned = fresh;
      this.bytes = fresh.buffer;
      this.held = { index, offset, length };
      return;
    }
    const ahead = this.ahead;
    this.ahead = undefined;
    if (ahead !== undefined && ahead.index === index && (await ahead.read)) {
      if (this.closed) {
        givePieceBuffer(ahead.buffer);
        this.assertOpen();
      }
      // Nothing fills the reader's own buffer between loads: it can go back at once.
      if (this.buffer !== undefined) givePieceBuffer(this.buffer);
      this.buffer = ahead.buffer;
      const actual = createHash('sha256').update(ahead.buffer.subarray(0, length)).digest('hex');
      if (actual !== expected) throw await this.source.corrupt(index, actual);
      this.bytes = ahead.buffer;
      this.held = { index, offset, length };
      this.readAhead(index + 1);
      return;
    }
    if (ahead !== undefined) giveBackWhenRead(ahead);
    this.assertOpen();
    this.buffer ??= takePieceBuffer(pieceSizeBytes);
    const buffer = this.buffer;
    this.handle ??= this.source.open();
    const handle = await this.handle;
    this.assertOpen();
    const hash = createHash('sha256');
    let at = 0;
    while (at < length) {
      const reading = handle.read(buffer, at, Math.min(PIECE_READ_CHUNK_BYTES, length - at), offset + at);
      this.loading = reading;
      let bytesRead: number;
      try {
        ({ bytesRead } = await reading);
      } finally {
        this.loading = undefined;
      }
      this.assertOpen();
      if (bytesRead === 0) throw new SizeMismatchError(`the file of ${this.source.digest} ends at byte ${offset + at}, before its recorded size`);
      hash.update(buffer.subarray(at, at + bytesRead));
      at += bytesRead;
    }
    const actual = hash.digest('hex');
    if (actual !== expected) throw await this.source.corrupt(index, actual);
    this.bytes = buffer;
    this.held = { index, offset, length };
    this.readAhead(index + 1);
  }

  /** Starts reading piece `index` from disk into a buffer of its own, when the range goes on to it and it may be read (a failed read is read again by load). */
  private readAhead(index: number): void {
    const { pieceSizeBytes, blobSizeBytes } = this.source.layout;
    const offset = index * pieceSizeBytes;
    if (offset >= this.endExclusive || this.ahead !== undefined || this.handle === undefined || !this.canRead(index)) return;
    if (this.source.inMemory?.(index) === true) return;
    const length = Math.min(pieceSizeBytes, blobSizeBytes - offset);
    const buffer = takePieceBuffer(pieceSizeBytes);
    const handle = this.handle;
    const read = (async (): Promise<boolean> => {
      const h = await handle;
      let at = 0;
      while (at < length && !this.closed) {
        const { bytesRead } = await h.read(buffer, at, length - at, offset + at);
        if (bytesRead === 0) return false;
        at += bytesRead;
      }
      return at === length;
    })().catch(() => false);
    this.ahead = { index, buffer, read };
  }

  /** The reader closes: a read ahead goes, its buffer once its read settled. */
  private dropAhead(): void {
    const ahead = this.ahead;
    this.ahead = undefined;
    if (ahead !== undefined) giveBackWhenRead(ahead);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`reader of ${this.source.digest} is closed`);
  }
}

/** A read ahead nobody will use: its buffer goes back to the pool once nothing fills it any more. */
function giveBackWhenRead(ahead: { buffer: Buffer; read: Promise<boolean> }): void {
  void ahead.read.then(() => givePieceBuffer(ahead.buffer));
}
