import { BadRequestError, pieceLayout, pieceSpan, type Digest, type PieceLayout } from '@shoal/core';
import { bitmapBytes } from './record.js';
import type { BlobRecord } from './types.js';
import { newWriteState, type WriteState } from './writing.js';
import { newWholeDigestState, type WholeDigestState } from './whole-digest.js';
import { newReadState, type ReadState } from './reading.js';
import { newQuotaState, type QuotaState } from './quota.js';

/**
 * In-memory state of one blob. The record (the first block) is the db record's
 * cache and changes only through the Catalog; every other part keeps its own
 * state in its own field and is the only one to change it.
 */
export interface Entry {
  readonly digest: Digest;
  readonly layout: PieceLayout;
  readonly pieceSha256: Array<string | null>;
  readonly verified: Uint8Array;
  verifiedCount: number;
  complete: boolean;
  lastAccessMs: number;
  /** lastAccessMs changed since the last db write (written lazily, at the next flush or close). */
  accessDirty: boolean;
  /** A db write queued (or waiting out its delay) but not started yet: later changes ride along with it. `now` ends the delay. */
  pendingFlush: { readonly done: Promise<void>; readonly now: () => void } | undefined;
  snapshot: BlobRecord | undefined;
  /** Set once the entry is discarded; operations still holding it fail with this. */
  discardReason: Error | undefined;
  /** Settles once a discard has removed the files and record: a second caller waits for it instead of returning early. */
  discarded: Promise<void> | undefined;

  /** Writers, the shared write descriptor and piece locks (writing.ts). */
  readonly write: WriteState;
  /** The running whole-blob hash and certification (whole-digest.ts). */
  readonly whole: WholeDigestState;
  /** Open readers (reading.ts). */
  readonly read: ReadState;
  /** Disk-full handling under way (quota.ts). */
  readonly quota: QuotaState;
}

export function newEntry(digest: Digest, layout: PieceLayout, lastAccessMs: number): Entry {
  return {
    digest,
    layout,
    pieceSha256: new Array<string | null>(layout.pieceCount).fill(null),
    verified: new Uint8Array(bitmapBytes(layout.pieceCount)),
    verifiedCount: 0,
    complete: false,
    lastAccessMs,
    accessDirty: false,
    pendingFlush: undefined,
    snapshot: undefined,
    discardReason: undefined,
    discarded: undefined,
    write: newWriteState(),
    whole: newWholeDigestState(),
    read: newReadState(),
    quota: newQuotaState(),
  };
}

export function layoutFor(sizeBytes: number): PieceLayout {
  try {
    return pieceLayout(sizeBytes);
  } catch (err) {
    throw new BadRequestError(err instanceof Error ? err.message : String(err));
  }
}

export function spanOf(entry: Entry, index: number): { offset: number; length: number } {
  try {
    return pieceSpan(entry.layout, index);
  } catch (err) {
    throw new BadRequestError(`${entry.digest}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export function pieceEnd(layout: PieceLayout, index: number): number {
  return Math.min((index + 1) * layout.pieceSizeBytes, layout.blobSizeBytes);
}

export const noop = (): void => {};

export function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
