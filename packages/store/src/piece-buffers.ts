/**
 * Piece-sized buffers, reused: a stream of fresh 1 MiB buffers costs page
 * faults and garbage collection. Readers read a piece whole into one
 * (range-reader.ts), and the fresh-piece cache copies a piece into one as it
 * is verified (fresh-pieces.ts).
 *
 * Idle buffers kept for reuse, at most this many bytes in all (32 MiB: 32
 * buffers of 1 MiB, or 2 of 16 MiB). Buffers in use are bounded by their
 * holders (readers by their callers, the fresh-piece cache by its budget).
 */
const MAX_IDLE_PIECE_BUFFER_BYTES = 32 * 1024 * 1024;
const idlePieceBuffers = new Map<number, Buffer[]>();
let idlePieceBufferBytes = 0;

/** A buffer of exactly `bytes`, from the idle ones when there is one. */
export function takePieceBuffer(bytes: number): Buffer {
  const buffer = idlePieceBuffers.get(bytes)?.pop();
  if (buffer === undefined) return Buffer.allocUnsafeSlow(bytes);
  idlePieceBufferBytes -= bytes;
  return buffer;
}

/** Gives back a buffer nobody reads or fills any more (or lets the GC have it when enough are idle). */
export function givePieceBuffer(buffer: Buffer): void {
  if (idlePieceBufferBytes + buffer.length > MAX_IDLE_PIECE_BUFFER_BYTES) return;
  let list = idlePieceBuffers.get(buffer.length);
  if (list === undefined) idlePieceBuffers.set(buffer.length, (list = []));
  list.push(buffer);
  idlePieceBufferBytes += buffer.length;
}
