import { setMaxListeners } from 'node:events';
import {
  parseTaskInfo,
  pieceLayout,
  pieceSpan,
  SwarmUnavailableError,
  type Digest,
  type Logger,
  type PieceLayout,
} from '@shoal/core';
import type { PieceStoreApi } from '@shoal/store';
import type { PeerDiscovery } from './discovery/index.js';
import type { PieceClient } from './piece-client.js';

/** Peers asked for a blob found in the DHT. */
const DHT_LOOKUP_LIMIT = 16;
const DHT_LOOKUP_TIMEOUT_MS = 3_000;
/** Pieces in flight from DHT-found peers. */
const DHT_WINDOW = 8;

/**
 * Filling a blob from peers found in the DHT, for when no supernode answers.
 * Without a supernode there is no trusted list of piece hashes: the list comes
 * from a peer that holds the whole blob. Each piece is checked against that
 * list, and the store checks the whole blob against its digest before the
 * blob's last bytes are released, so a lying peer can waste time but never
 * hand containerd a wrong blob.
 */
export class DhtFill {
  readonly digest: Digest;
  readonly layout: PieceLayout;
  readonly bytesFrom = { peer: 0, supernode: 0 };
  readonly done: Promise<void>;
  private readonly abort = new AbortController();

  private constructor(
    private readonly components: { log: Logger; store: PieceStoreApi; pieces: PieceClient; onPieceBytes?: ((from: 'peer' | 'supernode', bytes: number) => void) | undefined; onProgress?: (() => void) | undefined },
    digest: Digest,
    sizeBytes: number,
    private readonly parents: string[],
    onDone: () => void,
  ) {
    this.digest = digest;
    this.layout = pieceLayout(sizeBytes);
    setMaxListeners(64, this.abort.signal);
    this.done = this.run().finally(onDone);
    this.done.catch((err: unknown) => {
      if (!this.abort.signal.aborted) this.abort.abort(err);
    });
  }

  /**
   * Finds holders and a hash list; rejects (so the caller can go to the
   * registry) when no peer in the DHT holds the whole blob.
   */
  static async start(
    components: {
      log: Logger;
      store: PieceStoreApi;
      pieces: PieceClient;
      discovery: PeerDiscovery;
      onPieceBytes?: ((from: 'peer' | 'supernode', bytes: number) => void) | undefined;
      onProgress?: (() => void) | undefined;
    },
    init: { digest: Digest; sizeBytes: number; onDone: () => void },
  ): Promise<DhtFill> {
    const log = components.log.child({ module: 'dht-fill', digest: init.digest });
    const parents = await components.discovery.lookup(init.digest, { limit: DHT_LOOKUP_LIMIT, timeoutMs: DHT_LOOKUP_TIMEOUT_MS });
    for (const parent of parents) {
      try {
        const info = parseTaskInfo(await components.pieces.fetchInfo(parent, init.digest, AbortSignal.timeout(3_000)), 'peer blob info');
        if (!info.complete || info.sizeBytes !== init.sizeBytes || info.pieceSha256.some((h) => h === null)) continue;
        await components.store.begin(init.digest, init.sizeBytes);
        await components.store.setPieceHashes(init.digest, info.pieceSha256);
        log.warn({ parents: parents.length }, 'no supernode answered: fetching from peers found in the DHT');
        return new DhtFill(components, init.digest, init.sizeBytes, parents, init.onDone);
      } catch (err) {
        log.debug({ parent, err: (err as Error).message }, 'DHT peer could not describe the blob');
      }
    }
    throw new SwarmUnavailableError(`no peer in the DHT holds ${init.digest}`);
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  attach(): { setCursor: (piece: number) => void; detach: () => void } {
    return { setCursor: () => undefined, detach: () => undefined };
  }

  cancel(reason: Error): void {
    this.abort.abort(reason);
  }

  private async run(): Promise<void> {
    let next = 0;
    let turn = 0;
    const worker = async (): Promise<void> => {
      while (!this.abort.signal.aborted && next < this.layout.pieceCount) {
        const piece = next++;
        if (this.components.store.hasPiece(this.digest, piece)) continue;
        let done = false;
        for (let tried = 0; tried < this.parents.length && !done; tried++) {
          const parent = this.parents[(turn++ + tried) % this.parents.length] as string;
          try {
            const body = await this.components.pieces.fetchPiece(parent, this.digest, piece, this.abort.signal);
            await this.components.store.writePiece(this.digest, piece, body, { signal: this.abort.signal });
            const { length } = pieceSpan(this.layout, piece);
            this.bytesFrom.peer += length;
            this.components.onPieceBytes?.('peer', length);
            this.components.onProgress?.();
            done = true;
          } catch (err) {
            if (this.abort.signal.aborted) return;
            this.components.log.debug({ digest: this.digest, piece, parent, err: (err as Error).message }, 'DHT parent failed a piece');
          }
        }
        if (!done) throw new SwarmUnavailableError(`no DHT peer could serve piece ${piece} of ${this.digest}`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(DHT_WINDOW, this.layout.pieceCount) }, worker));
    if (this.abort.signal.aborted) throw this.abort.signal.reason;
    await this.components.store.waitForComplete(this.digest, { signal: this.abort.signal });
  }
}
