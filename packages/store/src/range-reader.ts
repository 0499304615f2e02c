import type { FileHandle } from 'node:fs/promises';
import { SizeMismatchError, type ChunkReader, type Digest } from '@shoal/core';

/** What a RangeReader needs from the store. */
export interface RangeReaderSource {
  readonly digest: Digest;
  /** Opens the blob's file (partial or complete: the store knows which). */
  open(): Promise<FileHandle>;
  /**
   * The end (exclusive) of the verified bytes from `position`, looking no
   * further than `position + want`. Throws when the byte at `position` is not
   * verified or the blob was discarded.
   */
  verifiedEnd(position: number, want: number): number;
  /** Called once, when the reader closes. */
  release(): void;
}

/**
 * Reads bytes [start, endExclusive) of a stored blob into the caller's
 * buffers, one descriptor for the whole range. Every read is checked against
 * the store's verified pieces first, so an unverified byte is never read.
 */
export class RangeReader implements ChunkReader {
  private position: number;
  private handle: Promise<FileHandle> | undefined;
  private closed = false;

  constructor(
    private readonly source: RangeReaderSource,
    start: number,
    private readonly endExclusive: number,
  ) {
    this.position = start;
  }

  async read(into: Buffer): Promise<number> {
    if (this.closed) throw new Error(`reader of ${this.source.digest} is closed`);
    const left = this.endExclusive - this.position;
    if (left <= 0) return 0;
    if (into.length === 0) throw new RangeError('read into an empty buffer');
    const want = Math.min(into.length, left);
    const allowed = this.source.verifiedEnd(this.position, want) - this.position;
    this.handle ??= this.source.open();
    const handle = await this.handle;
    if (this.closed) throw new Error(`reader of ${this.source.digest} is closed`);
    const { bytesRead } = await handle.read(into, 0, Math.min(want, allowed), this.position);
    if (bytesRead === 0) throw new SizeMismatchError(`the file of ${this.source.digest} ends at byte ${this.position}, before its recorded size`);
    this.position += bytesRead;
    return bytesRead;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.source.release();
    // FileHandle.close waits for a read still in flight.
    this.handle?.then((handle) => handle.close()).catch(() => undefined);
  }
}
