import { open, type FileHandle } from 'node:fs/promises';
import {
  BlobUnknownError,
  CorruptAtRestError,
  PieceUnavailableError,
  RangeInvalidError,
  type ChunkReader,
  type Digest,
} from '@shoal/core';
import type { Catalog } from './catalog.js';
import { spanOf, type Entry } from './entry.js';
import { RangeReader } from './range-reader.js';
import { testBit } from './record.js';

/** A blob's open readers; changed only here. */
export interface ReadState {
  /** Open readers: the blob is being served and must not be evicted. */
  open: number;
}

export function newReadState(): ReadState {
  return { open: 0 };
}

/**
 * Reading for sending: the one read model is a ChunkReader that fills the
 * caller's buffers (RangeReader), hands out verified pieces only: from memory
 * while a piece just verified is still there (fresh-pieces.ts), else from disk,
 * checking every piece against its recorded SHA-256 as it reads it. A piece
 * that changed at rest drops the whole blob ('discarded', which tells the
 * supernode) and fails the read with CorruptAtRestError.
 */
export class Reading {
  constructor(private readonly catalog: Catalog) {}

  /** See PieceStoreApi.openReader. */
  openReader(digest: Digest, range?: { start: number; end: number }): ChunkReader {
    const { catalog } = this;
    catalog.assertOpen();
    const entry = catalog.entries.get(digest);
    if (entry === undefined) throw new BlobUnknownError(digest);
    const size = entry.layout.blobSizeBytes;
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    if (range !== undefined && (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end >= size || start > end)) {
      throw new RangeInvalidError(`bytes ${start}-${end} are not inside ${digest} (${size} bytes)`);
    }
    return this.reader(entry, start, end);
  }

  /** See PieceStoreApi.openPieceReader. */
  openPieceReader(digest: Digest, index: number, range?: { start: number; end: number }): ChunkReader {
    const { catalog } = this;
    catalog.assertOpen();
    const entry = catalog.entries.get(digest);
    if (entry === undefined) throw new PieceUnavailableError(digest, index);
    const span = spanOf(entry, index);
    if (!entry.complete && !testBit(entry.verified, index)) throw new PieceUnavailableError(digest, index);
    const last = span.offset + span.length - 1;
    const start = range?.start ?? span.offset;
    const end = range?.end ?? last;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < span.offset || end > last || start > end) {
      throw new RangeInvalidError(`bytes ${start}-${end} are not inside piece ${index} (${span.offset}-${last}) of ${digest}`);
    }
    return this.reader(entry, start, end);
  }

  /** Whether the blob is being read. */
  busy(entry: Entry): boolean {
    return entry.read.open > 0;
  }

  private reader(entry: Entry, start: number, end: number): ChunkReader {
    this.catalog.touch(entry);
    entry.read.open++;
    return new RangeReader(
      {
        digest: entry.digest,
        layout: entry.layout,
        open: () => this.openForRead(entry),
        readablePiece: (index) => this.readablePiece(entry, index),
        fresh: (index) => this.catalog.fresh.take(entry, index),
        inMemory: (index) => this.catalog.fresh.peek(entry, index) !== undefined,
        unpin: (piece) => this.catalog.fresh.unpin(piece),
        corrupt: (index, actual) => this.corrupt(entry, index, actual),
        release: () => {
          entry.read.open--;
        },
      },
      start,
      end + 1,
    );
  }

  /** See RangeReaderSource.readablePiece. */
  private readablePiece(entry: Entry, index: number): string {
    if (!entry.complete) {
      this.catalog.assertCurrent(entry);
      if (!testBit(entry.verified, index)) throw new PieceUnavailableError(entry.digest, index);
    }
    const sha = entry.pieceSha256[index];
    // A verified piece always has its hash (the record is refused at load otherwise).
    if (sha === null || sha === undefined) throw new PieceUnavailableError(entry.digest, index);
    return sha;
  }

  /** Piece `index` changed on disk since it was verified: the blob goes, and the read fails. */
  private async corrupt(entry: Entry, index: number, actual: string): Promise<Error> {
    const { catalog } = this;
    const { digest } = entry;
    const error = new CorruptAtRestError(`piece ${index} of ${digest} on disk hashes to ${actual}, not the recorded ${entry.pieceSha256[index] ?? '?'}: the blob is dropped`);
    catalog.log.error({ digest, piece: index, complete: entry.complete }, 'stored piece corrupt at rest; blob dropped');
    await catalog.discard(entry, error, false);
    return error;
  }

  /** Opens the blob's file for reading: the partial file, or blobs/ once completion renamed it. */
  private async openForRead(entry: Entry): Promise<FileHandle> {
    const { catalog } = this;
    catalog.assertCurrent(entry);
    if (entry.complete) return open(catalog.blobPath(entry.digest), 'r');
    try {
      const handle = await open(catalog.partialPath(entry.digest), 'r');
      // A blob discarded and begun again has a new file whose bytes are not verified.
      if (catalog.isCurrent(entry)) return handle;
      await handle.close();
      throw entry.discardReason ?? new BlobUnknownError(entry.digest);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && entry.complete && catalog.isCurrent(entry)) return open(catalog.blobPath(entry.digest), 'r');
      throw err;
    }
  }
}
