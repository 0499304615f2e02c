/**
 * Piece math. A blob is cut into equal pieces (the last may be shorter). The
 * piece size is chosen per blob from its size alone, so every peer and the
 * supernode compute the same layout without asking anyone:
 *
 *   pieceSizeBytes = clamp(nextPowerOfTwo(ceil(size / TARGET_PIECE_COUNT)), MIN, MAX)
 *
 * Small pieces let a blob flow down a chain of peers with little delay per hop
 * and spread load; the bound on the piece count keeps per-blob metadata
 * (one SHA-256 per piece) and scheduling state small.
 */

/** 1 MiB: below this, per-piece overhead (requests, hashes) dominates. */
export const MIN_PIECE_SIZE_BYTES = 1024 * 1024;
/**
 * 8 MiB: above this, a piece takes too long to cross one link (2.7 s at
 * 25 Mbit/s), and every reader or writer of one holds a buffer of its size.
 * A 4 GiB blob cost no more per GiB in pieces of 8 MiB than of 16.
 */
export const MAX_PIECE_SIZE_BYTES = 8 * 1024 * 1024;
/**
 * Aim for at most this many pieces per blob (more only when MAX caps the size).
 * Every piece costs each process a request and its schedule step: halving the
 * pieces of a 512 MiB blob (1 MiB to 2 MiB) took about 1.1 CPU-s per GiB off
 * both the supernode and a node agent. More pieces shorten each hop down a
 * chain of peers, but with 256 a hop is a 256th of the blob's time.
 */
export const TARGET_PIECE_COUNT = 256;

export function pieceSizeFor(blobSizeBytes: number): number {
  if (!Number.isSafeInteger(blobSizeBytes) || blobSizeBytes < 0) throw new RangeError(`invalid blob size ${blobSizeBytes}`);
  let size = MIN_PIECE_SIZE_BYTES;
  while (size < MAX_PIECE_SIZE_BYTES && size * TARGET_PIECE_COUNT < blobSizeBytes) size *= 2;
  return size;
}

export interface PieceLayout {
  readonly blobSizeBytes: number;
  readonly pieceSizeBytes: number;
  readonly pieceCount: number;
}

export function pieceLayout(blobSizeBytes: number): PieceLayout {
  const pieceSizeBytes = pieceSizeFor(blobSizeBytes);
  return { blobSizeBytes, pieceSizeBytes, pieceCount: Math.ceil(blobSizeBytes / pieceSizeBytes) };
}

/** Byte offset and length of piece `index`. */
export function pieceSpan(layout: PieceLayout, index: number): { offset: number; length: number } {
  if (!Number.isInteger(index) || index < 0 || index >= layout.pieceCount) {
    throw new RangeError(`piece ${index} out of range 0..${layout.pieceCount - 1}`);
  }
  const offset = index * layout.pieceSizeBytes;
  return { offset, length: Math.min(layout.pieceSizeBytes, layout.blobSizeBytes - offset) };
}

/** Indexes of the first and last piece that hold bytes [start, endInclusive]. */
export function piecesForRange(layout: PieceLayout, start: number, endInclusive: number): { first: number; last: number } {
  return { first: Math.floor(start / layout.pieceSizeBytes), last: Math.floor(endInclusive / layout.pieceSizeBytes) };
}
