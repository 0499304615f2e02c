import { createHash, type Hash } from 'node:crypto';
import { open, rename } from 'node:fs/promises';
import { DigestMismatchError, SizeMismatchError } from '@shoal/core';
import { isDiskFull, type Catalog } from './catalog.js';
import { pieceEnd, toError, type Entry } from './entry.js';
import { testBit } from './record.js';
import { DIGEST_VERIFIED } from './waiters.js';

/** 1 MiB: reads for re-hashing the verified prefix; large reads keep the hash loop busy, not the syscalls. */
const HASH_READ_CHUNK_BYTES = 1024 * 1024;
/** Read buffers for hashing back what is on disk, reused: fresh 1 MiB buffers cost page faults and GC. At most this many are kept idle. */
const MAX_HASH_BUFFERS = 4;
const hashBuffers: Buffer[] = [];

/** Running SHA-256 over blob bytes [0, bytes); `bytes` is always a piece boundary between advance steps. */
interface Prefix {
  hash: Hash;
  bytes: number;
}

/** A blob's whole-digest pass; changed only here. */
export interface WholeDigestState {
  /**
   * Piece hashes certified by a holder that matched the whole blob: completing
   * needs every piece verified, not a whole-blob hash (prefix is then unused).
   */
  certified: boolean;
  /**
   * A trusted holder is still matching the blob to its digest and is expected
   * to certify these piece hashes: the pass waits (hashes nothing) until it
   * does, or until `resume` says no certification is coming.
   */
  awaitingCertification: boolean;
  /** The assembled bytes matched the digest (set before the datasync and rename that make it `complete`). */
  digestVerified: boolean;
  /** Undefined once complete or discarded. */
  prefix: Prefix | undefined;
  /**
   * Whole-blob hashes already covering [0, end of piece i], computed by a writer
   * that streamed piece i right behind the prefix: the advance step takes them
   * instead of reading the piece back from disk.
   */
  readonly hints: Map<number, Hash>;
  /** An advance step queued but not started yet. */
  advanceQueued: Promise<void> | undefined;
  advanceTail: Promise<void>;
}

export function newWholeDigestState(): WholeDigestState {
  return {
    certified: false,
    awaitingCertification: false,
    digestVerified: false,
    prefix: { hash: createHash('sha256'), bytes: 0 },
    hints: new Map(),
    advanceQueued: undefined,
    advanceTail: Promise.resolve(),
  };
}

/** What the pass needs from the writing and quota parts. */
export interface WholeDigestParts {
  /** Makes the partial file durable and closes its write descriptor. */
  syncAndClose(entry: Entry): Promise<void>;
  diskFull(entry: Entry, err: unknown): Promise<unknown>;
}

/**
 * The whole-blob digest: a running SHA-256 over the verified prefix of each
 * blob, extended as pieces land in order (from a writer's hint, else from the
 * piece still in memory, else by reading the pieces back), which completes the blob when it covers everything and
 * matches, and discards it when it does not. A certified blob (its piece
 * hashes vouched for by a holder that matched the whole) skips the pass and
 * completes once every piece is verified.
 */
export class WholeDigest {
  constructor(
    private readonly catalog: Catalog,
    private readonly parts: WholeDigestParts,
  ) {}

  /** A blob loaded complete has no pass. */
  markComplete(entry: Entry): void {
    entry.whole.prefix = undefined;
  }

  /** Trust certified piece hashes: the pass stops, and the blob completes once every piece matched them. */
  certify(entry: Entry): void {
    if (entry.whole.certified || entry.complete) return;
    // Not persisted: after a restart the blob is hashed whole again, as before.
    entry.whole.certified = true;
    entry.whole.awaitingCertification = false;
    entry.whole.hints.clear();
    this.catalog.track(this.kick(entry));
  }

  /**
   * Certified hashes are expected (see WholeDigestState.awaitingCertification):
   * no whole-blob hashing until then. Not persisted: after a restart the blob
   * is hashed whole again.
   */
  awaitCertification(entry: Entry): void {
    if (entry.whole.certified || entry.complete || entry.whole.prefix === undefined) return;
    entry.whole.awaitingCertification = true;
    entry.whole.hints.clear();
  }

  /** No certification is coming: the pass hashes the blob here (pieces no longer in memory are read back). */
  resume(entry: Entry): void {
    if (!entry.whole.awaitingCertification) return;
    entry.whole.awaitingCertification = false;
    this.catalog.track(this.kick(entry));
  }

  /**
   * A whole-blob hash through piece `index` (a writer hashed it right behind the
   * prefix), for the pass to take instead of reading the piece back. Ignored
   * once the prefix is past the piece.
   */
  offerHint(entry: Entry, index: number, hint: Hash | undefined): void {
    const prefix = entry.whole.prefix;
    if (hint !== undefined && prefix !== undefined && prefix.bytes <= index * entry.layout.pieceSizeBytes) entry.whole.hints.set(index, hint);
  }

  /**
   * A copy of the running hash when it ends exactly at `offset` (and cannot
   * move: the piece starting there is unverified and its writer holds its
   * lock), so a writer hashing the piece on top gets the prefix through it
   * without reading it back. Certified blobs need none.
   */
  hintBase(entry: Entry, offset: number): Hash | undefined {
    const { certified, awaitingCertification, prefix } = entry.whole;
    return !certified && !awaitingCertification && prefix?.bytes === offset ? prefix.hash.copy() : undefined;
  }

  /** Whether the pass still runs and is not yet past `offset`. */
  wantsHintAt(entry: Entry, offset: number): boolean {
    return !entry.whole.awaitingCertification && entry.whole.prefix !== undefined && entry.whole.prefix.bytes <= offset;
  }

  digestVerified(entry: Entry): boolean {
    return entry.complete || entry.whole.digestVerified;
  }

  /** The blob is going: the pass stops. */
  forget(entry: Entry): void {
    entry.whole.prefix = undefined;
    entry.whole.hints.clear();
  }

  /**
   * Queues an advance step, unless one is queued and not yet started (it will
   * see this change too). Resolves after a step that started after the call.
   * Never rejects: failures discard the blob.
   */
  kick(entry: Entry): Promise<void> {
    const state = entry.whole;
    if (state.advanceQueued !== undefined) return state.advanceQueued;
    const step = state.advanceTail.then(() => {
      state.advanceQueued = undefined;
      return this.advance(entry);
    });
    state.advanceQueued = step;
    state.advanceTail = step;
    return step;
  }

  /** Extends the verified prefix as far as it goes; completes or discards the blob when it covers everything. */
  private async advance(entry: Entry): Promise<void> {
    const { layout, digest } = entry;
    const { catalog } = this;
    const state = entry.whole;
    try {
      if (state.certified) {
        if (state.prefix !== undefined && catalog.isCurrent(entry) && !catalog.closed && entry.verifiedCount === layout.pieceCount) await this.finalize(entry, undefined);
        return;
      }
      // Certified meanwhile (setPieceHashes): the pass stops, and a later advance completes the blob.
      // Awaiting certification: nothing to do until it comes or `resume`.
      while (catalog.isCurrent(entry) && !catalog.closed && state.prefix !== undefined && !state.certified && !state.awaitingCertification) {
        const prefix = state.prefix;
        if (prefix.bytes === layout.blobSizeBytes) {
          await this.finalize(entry, prefix.hash);
          return;
        }
        const first = prefix.bytes / layout.pieceSizeBytes;
        if (!testBit(entry.verified, first)) break;
        const hint = state.hints.get(first);
        if (hint !== undefined) {
          state.hints.delete(first);
          prefix.hash = hint;
          prefix.bytes = pieceEnd(layout, first);
          continue;
        }
        // A piece still in memory since it was verified is hashed from there; a run of others is read back from disk.
        const fresh = catalog.fresh.peek(entry, first);
        if (fresh !== undefined) {
          prefix.hash.update(fresh.buffer.subarray(0, fresh.length));
          prefix.bytes = pieceEnd(layout, first);
          continue;
        }
        let last = first;
        while (last + 1 < layout.pieceCount && testBit(entry.verified, last + 1) && !state.hints.has(last + 1) && catalog.fresh.peek(entry, last + 1) === undefined) last++;
        const end = pieceEnd(layout, last);
        await hashFileRange(catalog.partialPath(digest), prefix.hash, prefix.bytes, end - 1, catalog.closing.signal);
        prefix.bytes = end;
      }
    } catch (err) {
      if (catalog.closed || !catalog.isCurrent(entry)) return;
      if (entry.complete) {
        catalog.log.error({ digest, err }, 'blob complete but its record could not be written');
        return;
      }
      if (isDiskFull(err)) {
        await this.parts.diskFull(entry, err);
        return;
      }
      catalog.log.error({ digest, err }, 'checking the blob digest failed');
      await catalog.discard(entry, toError(err));
    } finally {
      const bytes = state.prefix?.bytes;
      for (const index of state.hints.keys()) {
        if (bytes === undefined || index * layout.pieceSizeBytes < bytes) state.hints.delete(index);
      }
    }
  }

  /** `hash` covers the whole blob; undefined for a certified blob whose every piece matched. */
  private async finalize(entry: Entry, hash: Hash | undefined): Promise<void> {
    const { digest } = entry;
    const { catalog } = this;
    entry.whole.prefix = undefined;
    const actual = hash === undefined ? digest : `sha256:${hash.digest('hex')}`;
    if (actual !== digest) {
      await catalog.discard(entry, new DigestMismatchError(`pieces of ${digest} assembled to ${actual}`));
      return;
    }
    // Readers may have the last bytes now; making the file durable can take
    // seconds on a busy disk (a datasync waits for other writers' data too).
    entry.whole.digestVerified = true;
    catalog.waiters.resolve(digest, DIGEST_VERIFIED);
    await catalog.serial(digest, async () => {
      if (!catalog.isCurrent(entry)) return;
      // Once in blobs/ it is served without a whole-digest check: make the bytes durable before the name.
      await this.parts.syncAndClose(entry);
      await rename(catalog.partialPath(digest), catalog.blobPath(digest));
      catalog.recordComplete(entry);
      entry.whole.hints.clear();
      catalog.log.info({ digest, sizeBytes: entry.layout.blobSizeBytes }, 'blob complete');
      catalog.events.emit('complete', digest);
      catalog.waiters.resolveAll(digest);
      try {
        await catalog.putRecord(entry);
      } catch (err) {
        // The file is in blobs/ and verified; a restart finds it there and upgrades the record.
        catalog.log.error({ digest, err }, 'could not record the blob as complete');
        entry.accessDirty = true;
      }
    });
  }
}

/** Hashes bytes [start, endInclusive] of the file at `path` into `hash`. */
export async function hashFileRange(path: string, hash: Hash, start: number, endInclusive: number, signal: AbortSignal): Promise<void> {
  const handle = await open(path, 'r');
  const buffer = hashBuffers.pop() ?? Buffer.allocUnsafeSlow(HASH_READ_CHUNK_BYTES);
  try {
    let position = start;
    while (position <= endInclusive) {
      signal.throwIfAborted();
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, endInclusive + 1 - position), position);
      if (bytesRead === 0) throw new SizeMismatchError(`${path}: read ${position - start} bytes at ${start}, expected ${endInclusive - start + 1}`);
      hash.update(buffer.subarray(0, bytesRead));
      position += bytesRead;
    }
  } finally {
    await handle.close();
    // hash.update copies nothing it keeps: the buffer is free again.
    if (hashBuffers.length < MAX_HASH_BUFFERS) hashBuffers.push(buffer);
  }
}
