import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { SizeMismatchError, type ChunkReader, type Digest, type PieceLayout } from '@shoal/core';
import type { FreshPiece } from './fresh-pieces.js';

/** Bytes per read syscall while a piece is read and hashed (a piece of 1–16 MiB takes 1–16). */
const PIECE_READ_CHUNK_BYTES = 1024 * 1024;
/**
 * Idle piece buffers kept for reuse, at most this many bytes in all (32 MiB:
 * 32 buffers of 1 MiB, or 2 of 16 MiB). A reader holds one buffer of its
 * blob's piece size from reading a piece until the piece is read out (1 MiB
 * for blobs up to 1 GiB, at most 16 MiB); readers are bounded by their
 * callers (a peer's upload slots, the proxy's responses).
 */
const MAX_IDLE_PIECE_BUFFER_BYTES = 32 * 1024 * 1024;
const idlePieceBuffers = new Map<number, Buffer[]>();
let idlePieceBufferBytes = 0;

function takePieceBuffer(bytes: number): Buffer {
  const buffer = idlePieceBuffers.get(bytes)?.pop();
  if (buffer === undefined) return Buffer.allocUnsafeSlow(bytes);
  idlePieceBufferBytes -= bytes;
  return buffer;
}

function givePieceBuffer(buffer: Buffer): void {
  if (idlePieceBufferBytes + buffer.length > MAX_IDLE_PIECE_BUFFER_BYTES) return;
  let list = idlePieceBuffers.get(buffer.length);
  if (list === undefined) idlePieceBuffers.set(buffer.length, (list = []));
  list.push(buffer);
  idlePieceBufferBytes += buffer.length;
}

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
   * was written; undefined when it must come from disk.
   */
  fresh(index: number): FreshPiece | undefined;
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
 */
export class RangeReader implements ChunkReader {
  private position: number;
  private handle: Promise<FileHandle> | undefined;
  private closed = false;
  /** The verified piece whose bytes are in `bytes` (the reader's own `buffer`) or `freshPiece`, if any. */
  private held: { index: number; offset: number; length: number } | undefined;
  private bytes: Buffer | undefined;
  /** Where the next copy out of `freshPiece`'s chunks starts looking (reads only move forward). */
  private chunkAt = { index: 0, start: 0 };
  /** The reader's own pooled buffer, filled from disk. */
  private buffer: Buffer | undefined;
  /** The fresh piece held (its chunks stay valid while referenced here). */
  private freshPiece: FreshPiece | undefined;
  /** A piece being read into `buffer`: the buffer is given back only once it settles. */
  private loading: Promise<unknown> | undefined;

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
      if (this.freshPiece !== undefined) this.copyFresh(this.freshPiece, this.position - held.offset, into, filled, count);
      else (this.bytes as Buffer).copy(into, filled, this.position - held.offset, this.position - held.offset + count);
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
    // FileHandle.close waits for a read still in flight.
    this.handle?.then((handle) => handle.close()).catch(() => undefined);
  }

  /** A piece read out (or the reader closed): its buffer goes back to the pool, so an idle reader holds none. */
  private releaseBuffer(): void {
    const buffer = this.buffer;
    this.buffer = undefined;
    this.freshPiece = undefined;
    this.bytes = undefined;
    this.held = undefined;
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
    this.freshPiece = undefined;
    const fresh = this.source.fresh(index);
    if (fresh !== undefined && fresh.length === length) {
      // The bytes that matched the hash when the piece was written, never on disk in between: no read, no second hash.
      this.freshPiece = fresh;
      this.chunkAt = { index: 0, start: 0 };
      this.held = { index, offset, length };
      return;
    }
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
  }

  /** Copies `count` bytes from `from` (piece offset) of a fresh piece's chunks into `into` at `at`. */
  private copyFresh(piece: FreshPiece, from: number, into: Buffer, at: number, count: number): void {
    let cursor = this.chunkAt;
    if (from < cursor.start) cursor = this.chunkAt = { index: 0, start: 0 };
    let done = 0;
    while (done < count) {
      const chunk = piece.chunks[cursor.index] as Buffer;
      const inChunk = from + done - cursor.start;
      if (inChunk >= chunk.length) {
        cursor.start += chunk.length;
        cursor.index++;
        continue;
      }
      done += chunk.copy(into, at + done, inChunk, Math.min(chunk.length, inChunk + count - done));
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`reader of ${this.source.digest} is closed`);
  }
}
