import { Readable } from 'node:stream';
import {
  pieceSpan,
  piecesForRange,
  type BlobProvider,
  type BlobRequest,
  type BlobStream,
  type ByteRange,
  type Digest,
  type Logger,
  type PieceLayout,
} from '@shoal/core';
import type { PieceStoreApi } from '@shoal/store';
import { DEFAULT_PIECE_WINDOW, Download } from './download.js';
import type { SupernodeClient } from './supernode-client.js';

/** How long the supernode may take to start a blob (it waits for the registry's headers). */
const TASK_START_TIMEOUT_MS = 30_000;

export interface PeerComponents {
  log: Logger;
  store: PieceStoreApi;
  supernodes: SupernodeClient;
}

export interface PeerInit {
  peerId: string;
  /** Pieces fetched at once per blob. @default DEFAULT_PIECE_WINDOW */
  pieceWindow?: number;
}

/**
 * The node's peer: answers the proxy's blob requests from the local store, or
 * fills the store from the swarm while streaming the blob out in order.
 */
export class Peer implements BlobProvider {
  readonly peerId: string;
  private readonly log: Logger;
  private readonly store: PieceStoreApi;
  private readonly supernodes: SupernodeClient;
  private readonly pieceWindow: number;
  /** At most one download per digest; bounded by the blobs being pulled at once. */
  private readonly downloads = new Map<Digest, Promise<Download>>();

  constructor(components: PeerComponents, init: PeerInit) {
    this.log = components.log.child({ module: 'peer' });
    this.store = components.store;
    this.supernodes = components.supernodes;
    this.peerId = init.peerId;
    this.pieceWindow = init.pieceWindow ?? DEFAULT_PIECE_WINDOW;
  }

  get activeDownloads(): number {
    return this.downloads.size;
  }

  async openBlob(request: BlobRequest, range: ByteRange | undefined, options: { signal?: AbortSignal } = {}): Promise<BlobStream> {
    const { digest } = request;
    const record = this.store.get(digest);
    if (record?.complete === true) {
      if (record.layout.blobSizeBytes !== request.sizeBytes) this.log.warn({ digest, held: record.layout.blobSizeBytes, asked: request.sizeBytes }, 'size disagrees with registry');
      return {
        source: 'local',
        sizeBytes: record.layout.blobSizeBytes,
        body: this.store.readBlob(digest, range),
      };
    }
    const download = await this.download(request);
    const detach = download.attach();
    try {
      const readerSignal = options.signal === undefined ? download.signal : AbortSignal.any([options.signal, download.signal]);
      const start = range?.start ?? 0;
      const end = range?.end ?? download.layout.blobSizeBytes - 1;
      // The first byte must be in hand before we answer: if the swarm cannot
      // deliver it, the caller still has time to go to the registry instead.
      if (end >= start) {
        const { first } = piecesForRange(download.layout, start, end);
        await this.waitReadable(download.layout, digest, first, readerSignal);
      }
      const body = Readable.from(this.orderedBytes(download.layout, digest, start, end, readerSignal), { objectMode: false });
      body.once('close', detach);
      return { source: 'supernode', sizeBytes: download.layout.blobSizeBytes, body };
    } catch (err) {
      detach();
      throw err;
    }
  }

  /** Starts (or joins) this node's download of a blob. */
  private download(request: BlobRequest): Promise<Download> {
    let pending = this.downloads.get(request.digest);
    if (pending === undefined) {
      pending = (async () => {
        const { info, supernodeUrl } = await this.supernodes.createTask(
          { digest: request.digest, registry: request.registry, repository: request.repository, sizeBytes: request.sizeBytes, peerId: this.peerId },
          request.registryAuthorization,
          // Not the caller's signal: others may join this download while it starts.
          AbortSignal.timeout(TASK_START_TIMEOUT_MS),
        );
        await this.store.begin(request.digest, info.sizeBytes);
        await this.store.setPieceHashes(request.digest, info.pieceSha256);
        return new Download(
          { log: this.log, store: this.store, supernodes: this.supernodes },
          { info, supernodeUrl, pieceWindow: this.pieceWindow, onDone: () => this.downloads.delete(request.digest) },
        );
      })();
      this.downloads.set(request.digest, pending);
      pending.catch(() => this.downloads.delete(request.digest));
    }
    return pending;
  }

  /**
   * Waits until piece `index` may be read. The final piece is held back until
   * the whole blob has matched its digest, so a reader never gets a complete,
   * wrong blob.
   */
  private async waitReadable(layout: PieceLayout, digest: Digest, index: number, signal: AbortSignal): Promise<void> {
    if (index === layout.pieceCount - 1) await this.store.waitForComplete(digest, { signal });
    else await this.store.waitForPiece(digest, index, { signal });
  }

  private async *orderedBytes(layout: PieceLayout, digest: Digest, start: number, end: number, signal: AbortSignal): AsyncGenerator<Buffer> {
    if (end < start) return;
    const { first, last } = piecesForRange(layout, start, end);
    for (let index = first; index <= last; index++) {
      await this.waitReadable(layout, digest, index, signal);
      const span = pieceSpan(layout, index);
      const from = Math.max(start, span.offset);
      const to = Math.min(end, span.offset + span.length - 1);
      for await (const chunk of this.store.readPiece(digest, index, { start: from, end: to })) {
        yield chunk as Buffer;
      }
    }
  }

  close(): void {
    for (const pending of this.downloads.values()) {
      pending.then((d) => d.cancel(new Error('peer shutting down')), () => undefined);
    }
  }
}
