import { pieceLayout, type PieceLayout } from '@shoal/core';

/**
 * The value stored in the db under each blob's digest. The layout is stored
 * (not only recomputed) so a record written under a different piece formula is
 * detected at load instead of silently misaddressing pieces.
 */
export interface StoredRecord {
  v: 1;
  sizeBytes: number;
  pieceSizeBytes: number;
  pieceSha256: Array<string | null>;
  /** Verified-piece bitmap, bit i of byte i>>3 for piece i, base64. */
  verified: string;
  complete: boolean;
  lastAccessMs: number;
}

export const SHA256_HEX_RE = /^[a-f0-9]{64}$/;

export function bitmapBytes(pieceCount: number): number {
  return Math.ceil(pieceCount / 8);
}

export function testBit(bits: Uint8Array, index: number): boolean {
  return ((bits[index >> 3] ?? 0) & (1 << (index & 7))) !== 0;
}

export function setBit(bits: Uint8Array, index: number, on: boolean): void {
  const byte = bits[index >> 3] ?? 0;
  bits[index >> 3] = on ? byte | (1 << (index & 7)) : byte & ~(1 << (index & 7));
}

export function countBits(bits: Uint8Array, pieceCount: number): number {
  let n = 0;
  for (let i = 0; i < pieceCount; i++) if (testBit(bits, i)) n++;
  return n;
}

export interface DecodedRecord {
  layout: PieceLayout;
  pieceSha256: Array<string | null>;
  verified: Uint8Array;
  complete: boolean;
  lastAccessMs: number;
}

/**
 * Checks a value read back from the db. The db is ours, but a record from an
 * older version or a damaged database must be dropped, not trusted: its bitmap
 * decides which bytes we serve. Returns the problem as a string when invalid.
 */
export function decodeRecord(value: unknown): DecodedRecord | string {
  if (typeof value !== 'object' || value === null) return 'not an object';
  const r = value as Partial<Record<keyof StoredRecord, unknown>>;
  if (r.v !== 1) return `unknown record version ${String(r.v)}`;
  if (typeof r.sizeBytes !== 'number' || !Number.isSafeInteger(r.sizeBytes) || r.sizeBytes < 0) return 'bad sizeBytes';
  const layout = pieceLayout(r.sizeBytes);
  if (r.pieceSizeBytes !== layout.pieceSizeBytes) return `piece size ${String(r.pieceSizeBytes)} differs from the current layout (${layout.pieceSizeBytes})`;
  if (!Array.isArray(r.pieceSha256) || r.pieceSha256.length !== layout.pieceCount) return 'bad pieceSha256';
  const pieceSha256: Array<string | null> = [];
  for (const h of r.pieceSha256 as unknown[]) {
    if (h !== null && (typeof h !== 'string' || !SHA256_HEX_RE.test(h))) return 'bad piece hash';
    pieceSha256.push(h);
  }
  if (typeof r.verified !== 'string') return 'bad verified bitmap';
  const verified = new Uint8Array(Buffer.from(r.verified, 'base64'));
  if (verified.length !== bitmapBytes(layout.pieceCount)) return 'bad verified bitmap length';
  for (let i = 0; i < layout.pieceCount; i++) {
    if (testBit(verified, i) && pieceSha256[i] === null) return `piece ${i} verified without a hash`;
  }
  if (typeof r.complete !== 'boolean') return 'bad complete flag';
  if (r.complete && countBits(verified, layout.pieceCount) !== layout.pieceCount) return 'complete but not every piece verified';
  const lastAccessMs = typeof r.lastAccessMs === 'number' && Number.isFinite(r.lastAccessMs) ? r.lastAccessMs : 0;
  return { layout, pieceSha256, verified, complete: r.complete, lastAccessMs };
}

export function encodeRecord(record: DecodedRecord): StoredRecord {
  return {
    v: 1,
    sizeBytes: record.layout.blobSizeBytes,
    pieceSizeBytes: record.layout.pieceSizeBytes,
    pieceSha256: [...record.pieceSha256],
    verified: Buffer.from(record.verified).toString('base64'),
    complete: record.complete,
    lastAccessMs: record.lastAccessMs,
  };
}
