import {
  backoffMs,
  delay,
  DigestMismatchError,
  parseDigest,
  SwarmUnavailableError,
  type Digest,
  type Logger,
  type PieceLayout,
  type TaskInfo,
} from '@shoal/core';
import type { PieceStoreApi } from '@shoal/store';
import type { SupernodeClient } from './supernode-client.js';

/** Pieces requested at once for one blob: enough to keep a link busy while hashes are checked. */
export const DEFAULT_PIECE_WINDOW = 4;
/** Tries per piece before the download gives up (the proxy then falls back to the registry). */
export const MAX_PIECE_ATTEMPTS = 4;
/** With no reader left, a download keeps going this long before it is cancelled (containerd reconnects with Range). */
export const ORPHAN_GRACE_MS = 5_000;

export interface DownloadComponents {
  log: Logger;
  store: PieceStoreApi;
  supernodes: SupernodeClient;
}

export interface DownloadInit {
  info: TaskInfo;
  supernodeUrl: string;
  pieceWindow: number;
  onDone: () => void;
}

/**
 * One blob being filled on this node, piece by piece, lowest missing piece
 * first so that an in-order reader (the proxy) is never starved. Every piece is
 * checked against the hash the supernode recorded before it is stored; the
 * store checks the whole digest as the prefix completes.
 */
export class Download {
  readonly digest: Digest;
  readonly layout: PieceLayout;
  private readonly log: Logger;
  private readonly store: PieceStoreApi;
  private readonly supernodes: SupernodeClient;
  private readonly supernodeUrl: string;
  private readonly pieceWindow: number;
  private readonly hashes: Array<string | null>;
  private readonly abort = new AbortController();
  private readers = 0;
  private orphanTimer: NodeJS.Timeout | undefined;
  /** Settles when every piece is stored, or with the reason the download failed. */
  readonly done: Promise<void>;

  constructor(components: DownloadComponents, init: DownloadInit) {
    this.digest = parseDigest(init.info.digest);
    this.layout = { blobSizeBytes: init.info.sizeBytes, pieceSizeBytes: init.info.pieceSizeBytes, pieceCount: init.info.pieceCount };
    this.log = components.log.child({ module: 'download', digest: this.digest });
    this.store = components.store;
    this.supernodes = components.supernodes;
    this.supernodeUrl = init.supernodeUrl;
    this.pieceWindow = init.pieceWindow;
    this.hashes = [...init.info.pieceSha256];
    this.done = this.run().finally(init.onDone);
    // Failure is reported to readers through `signal`; nobody may be awaiting `done`.
    this.done.catch(() => undefined);
  }

  /** Aborted (with the cause) when the download fails or is cancelled: readers wait on it. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** A reader started; returns the function to call when it stops. */
  attach(): () => void {
    this.readers++;
    if (this.orphanTimer !== undefined) {
      clearTimeout(this.orphanTimer);
      this.orphanTimer = undefined;
    }
    let detached = false;
    return () => {
      if (detached) return;
      detached = true;
      this.readers--;
      if (this.readers === 0 && !this.abort.signal.aborted) {
        this.orphanTimer = setTimeout(() => this.cancel(new Error('no reader left')), ORPHAN_GRACE_MS);
        this.orphanTimer.unref();
      }
    };
  }

  cancel(reason: Error): void {
    this.abort.abort(reason);
  }

  private async run(): Promise<void> {
    const startedAt = Date.now();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (!this.abort.signal.aborted) {
        while (next < this.layout.pieceCount && this.store.hasPiece(this.digest, next)) next++;
        if (next >= this.layout.pieceCount) return;
        const index = next++;
        await this.fetchPiece(index);
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.pieceWindow, Math.max(1, this.layout.pieceCount)) }, worker));
      if (this.abort.signal.aborted) throw this.abort.signal.reason;
      await this.store.waitForComplete(this.digest, { signal: this.abort.signal });
      this.log.info({ sizeBytes: this.layout.blobSizeBytes, durationMs: Date.now() - startedAt }, 'blob downloaded');
    } catch (err) {
      const reason = err instanceof Error ? err : new Error(String(err));
      if (!this.abort.signal.aborted) this.abort.abort(reason);
      this.log.warn({ err: reason.message }, 'download stopped');
      throw reason;
    } finally {
      if (this.orphanTimer !== undefined) clearTimeout(this.orphanTimer);
    }
  }

  private async fetchPiece(index: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (this.abort.signal.aborted) throw this.abort.signal.reason;
      try {
        const piece = await this.supernodes.fetchPiece(this.supernodeUrl, this.digest, index, this.abort.signal);
        const known = this.hashes[index];
        if (known !== null && known !== undefined && known !== piece.sha256) {
          piece.body.destroy();
          throw new DigestMismatchError(`supernode's hash for piece ${index} changed from ${known} to ${piece.sha256}`);
        }
        this.hashes[index] = piece.sha256;
        await this.store.writePiece(this.digest, index, piece.body, { expectedSha256: piece.sha256, signal: this.abort.signal });
        return;
      } catch (err) {
        if (this.abort.signal.aborted) throw this.abort.signal.reason;
        if (attempt + 1 >= MAX_PIECE_ATTEMPTS) {
          throw new SwarmUnavailableError(`piece ${index} of ${this.digest} failed ${MAX_PIECE_ATTEMPTS} times`, { cause: err });
        }
        this.log.warn({ index, attempt, err: err instanceof Error ? err.message : String(err) }, 'piece failed, retrying');
        await delay(Math.max(50, backoffMs(attempt, 200, 2_000)), this.abort.signal);
      }
    }
  }
}
