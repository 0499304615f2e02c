/**
 * Piece-sized buffers, reused: a stream of fresh piece buffers costs page
 * faults and garbage collection (V8 runs full collections when much memory
 * outside its heap is allocated and freed). Readers read a piece whole into one,
 * and the next piece into another (range-reader.ts), and the fresh-piece cache
 * copies a piece into one as it is verified (fresh-pieces.ts).
 *
 * Idle buffers kept for reuse, at most this many bytes in all (32 MiB: 32
 * buffers of 1 MiB, or 4 of 8 MiB). Buffers in use are bounded by their
 * holders (readers by their callers, the fresh-piece cache by its budget).
 */
const MAX_IDLE_PIECE_BUFFER_BYTES = 32 * 1024 * 1024;

/**
 * Idle buffers by size, within a byte budget. Blobs of different sizes have
 * different piece sizes, so a process meets several; the budget goes to the
 * sizes in use: a buffer given back makes room by dropping idle buffers of the
 * sizes given back least recently. (Kept only while they fit, the budget would
 * stay full of the last small blobs' buffers, and every piece of a larger blob
 * after them would be a fresh allocation.)
 */
export class PieceBufferPool {
  /** Idle buffers by size; iteration order is the order sizes were last given back, oldest first. */
  private readonly idle = new Map<number, Buffer[]>();
  private idleBytes = 0;

  constructor(readonly maxIdleBytes = MAX_IDLE_PIECE_BUFFER_BYTES) {}

  /** A buffer of exactly `bytes`, from the idle ones when there is one. */
  take(bytes: number): Buffer {
    const buffer = this.idle.get(bytes)?.pop();
    if (buffer === undefined) return Buffer.allocUnsafeSlow(bytes);
    this.idleBytes -= bytes;
    return buffer;
  }

  /** Gives back a buffer nobody reads or fills any more (or lets the GC have it when its own size fills the budget). */
  give(buffer: Buffer): void {
    const size = buffer.length;
    if (size > this.maxIdleBytes) return;
    const list = this.idle.get(size) ?? [];
    this.idle.delete(size);
    this.idle.set(size, list);
    for (const [otherSize, others] of this.idle) {
      if (this.idleBytes + size <= this.maxIdleBytes || otherSize === size) break;
      while (others.length > 0 && this.idleBytes + size > this.maxIdleBytes) {
        others.pop();
        this.idleBytes -= otherSize;
      }
      if (others.length === 0) this.idle.delete(otherSize);
    }
    if (this.idleBytes + size > this.maxIdleBytes) return;
    list.push(buffer);
    this.idleBytes += size;
  }

  /** Idle bytes kept (for tests). */
  get idleByteCount(): number {
    return this.idleBytes;
  }
}

/** The process's pool: every store in it draws from this one. */
const pieceBuffers = new PieceBufferPool();

/** A buffer of exactly `bytes`, from the idle ones when there is one. */
export function takePieceBuffer(bytes: number): Buffer {
  return pieceBuffers.take(bytes);
}

/** Gives back a buffer nobody reads or fills any more. */
export function givePieceBuffer(buffer: Buffer): void {
  pieceBuffers.give(buffer);
}
