import type { FillKind, PeerMetrics } from './metrics.js';
import {
  abortable,
  parseDigest,
  pieceSpan,
  piecesForRange,
  SwarmUnavailableError,
  type BlobProvider,
  type BlobRequest,
  type BlobSource,
  type BlobStream,
  type ChunkReader,
  type ByteRange,
  type Digest,
  type Logger,
  type PieceLayout,
  type PrefetchBlob,
} from '@shoal/core';
import type { RegistryClientApi } from '@shoal/registry-client';
import type { PieceStoreApi } from '@shoal/store';
import { DEFAULT_PIECE_WINDOW, Download } from './download.js';
import type { PieceClient } from './piece-client.js';
import type { RateLimiter } from './rate-limit.js';
import { RegistryFill } from './registry-fill.js';
import { TaskStartStalledError } from './errors.js';
import { DhtFill } from './dht-fill.js';
import type { PeerDiscovery } from './discovery/index.js';
import type { SupernodeClient } from './supernode-client.js';

/**
 * Backstop on starting a blob at a supernode: given up after this long with
 * no news that it moves. A frozen or unreachable supernode is noticed within
 * seconds by liveness probes (SupernodeClient), and the proxy stops waiting
 * when nothing moves; this only ends a start that a live supernode never
 * finishes (a registry that never answers its request). A blob queued behind
 * the supernode's other fetches from its registry waits as long as they move.
 */
const TASK_START_STALL_MS = 120_000;
/**
 * A blob queued at the supernode is moving while the fetches ahead of it got a
 * byte from the registry at most this long ago (the supernode notes bytes each
 * second; it cuts a fetch under 8 KiB/s over 10 s, which frees its slot).
 */
const QUEUE_MOVING_MS = 10_000;

export interface PeerComponents {
  log: Logger;
  store: PieceStoreApi;
  supernodes: SupernodeClient;
  pieces: PieceClient;
  /** For the node's own back-to-source when no supernode answers. */
  registry?: RegistryClientApi | undefined;
  /** Peers by digest when no supernode answers. */
  discovery?: PeerDiscovery | undefined;
  downloadLimiter?: RateLimiter | undefined;
  onPieceBytes?: (from: 'peer' | 'supernode', bytes: number) => void;
  metrics?: PeerMetrics | undefined;
}

export interface PeerInit {
  peerId: string;
  advertiseUrl: string;
  zone?: string | undefined;
  /** Pieces fetched at once per blob. @default DEFAULT_PIECE_WINDOW */
  pieceWindow?: number;
}

/** What fills a blob on this node: the swarm (Download) or, without a supernode, the registry. */
type Fill = Download | DhtFill | RegistryFill;

/** X-Shoal-Source of a blob served while `fill` fills it: where its first piece came from. */
function sourceOf(fill: Fill, first: number | undefined): BlobSource {
  if (fill instanceof RegistryFill) return 'upstream';
  if (fill instanceof DhtFill) return 'peer';
  const origin = first === undefined ? undefined : fill.originOf(first);
  // Not fetched by this download (the piece was here already): judge by the bytes so far.
  return origin ?? (fill.bytesFrom.peer > 0 || fill.bytesFrom.supernode === 0 ? 'peer' : 'supernode');
}

/**
 * The node's peer: answers the proxy's blob requests from the local store, or
 * fills the store from the swarm while streaming the blob out in order.
 */
export class Peer implements BlobProvider {
  readonly peerId: string;
  private readonly log: Logger;
  private readonly components: PeerComponents;
  private readonly init: PeerInit;
  /** At most one fill per digest; bounded by the blobs being pulled at once. */
  private readonly fills = new Map<Digest, Promise<Fill>>();
  /** Per fill running: when it last made progress (started, or received bytes). Same bound as `fills`. */
  private readonly progress = new Map<Digest, number>();
  /** When any fill last received bytes. */
  private anyProgressMs = 0;

  constructor(components: PeerComponents, init: PeerInit) {
    this.log = components.log.child({ module: 'peer' });
    this.components = components;
    this.init = init;
    this.peerId = init.peerId;
  }

  get activeDownloads(): number {
    return this.fills.size;
  }

  /**
   * When this node's swarm last made progress for `digest` (Date.now() ms)
   * while it fills it: bytes of this blob, or of any other blob this node is
   * filling (they share the node's link: a blob waiting its turn behind the
   * image's other layers is slow, not dead); undefined when no fill runs for
   * it. The proxy waits for a swarm that moves, however slowly, and gives up
   * only on one that does not.
   */
  progressAt(digest: Digest): number | undefined {
    const own = this.progress.get(digest);
    return own === undefined ? undefined : Math.max(own, this.anyProgressMs);
  }

  async openBlob(request: BlobRequest, range: ByteRange | undefined, options: { signal?: AbortSignal } = {}): Promise<BlobStream> {
    const { digest } = request;
    const record = this.components.store.get(digest);
    if (record?.complete === true) {
      if (record.layout.blobSizeBytes !== request.sizeBytes) this.log.warn({ digest, held: record.layout.blobSizeBytes, asked: request.sizeBytes }, 'size disagrees with registry');
      return { source: 'local', sizeBytes: record.layout.blobSizeBytes, reader: this.components.store.openReader(digest, range) };
    }
    const fill = await this.fill(request);
    const attached = fill.attach();
    try {
      const readerSignal = options.signal === undefined ? fill.signal : AbortSignal.any([options.signal, fill.signal]);
      const start = range?.start ?? 0;
      const end = range?.end ?? fill.layout.blobSizeBytes - 1;
      const first = end >= start ? piecesForRange(fill.layout, start, end).first : undefined;
      // The first byte must be in hand before we answer: if the swarm cannot
      // deliver it, the caller still has time to go to the registry instead.
      if (first !== undefined) {
        attached.setCursor(first);
        await this.waitReadable(fill.layout, digest, first, readerSignal);
      }
      const reader = new InOrderReader(
        { store: this.components.store, layout: fill.layout, digest, signal: readerSignal, attached, waitReadable: (index, signal) => this.waitReadable(fill.layout, digest, index, signal) },
        start,
        end,
      );
      const source = sourceOf(fill, first);
      return { source, sizeBytes: fill.layout.blobSizeBytes, reader };
    } catch (err) {
      attached.detach();
      throw err;
    }
  }

  /**
   * Preheat into this node: fills the store with a blob through the same
   * swarm path a pull takes (the supernode's scheduler, other peers, the
   * seed), with no reader. The fill is pinned (held as a reader that reads
   * nothing) so the orphan timer does not cancel it. No registry credential:
   * the blob is in the supernode's cache already, and the swarm only needs the
   * cluster token. Resolves once the blob is complete here (at once if it
   * was); rejects with the reason it cannot be (quota, swarm failure...).
   */
  async prefetch(blob: PrefetchBlob, options: { signal?: AbortSignal } = {}): Promise<'local' | 'fetched'> {
    const digest = parseDigest(blob.digest);
    if (this.components.store.get(digest)?.complete === true) return 'local';
    const fill = await abortable(this.fill({ digest, registry: blob.registry, repository: blob.repository, sizeBytes: blob.sizeBytes, registryAuthorization: undefined }, { swarmOnly: true }), options.signal);
    const pin = fill.attach();
    try {
      await abortable(fill.done, options.signal);
    } finally {
      pin.detach();
    }
    if (this.components.store.get(digest)?.complete !== true) throw new Error(`${digest} is not complete in this node's store after its download`);
    return 'fetched';
  }

  /** Starts (or joins) this node's fill of a blob; `swarmOnly`: never the node's own back-to-source. */
  private fill(request: BlobRequest, options: { swarmOnly?: boolean } = {}): Promise<Fill> {
    let pending = this.fills.get(request.digest);
    if (pending === undefined) {
      const onDone = (): void => {
        this.fills.delete(request.digest);
        this.progress.delete(request.digest);
      };
      const onProgress = (): void => {
        const now = Date.now();
        this.anyProgressMs = now;
        if (this.fills.has(request.digest)) this.progress.set(request.digest, now);
      };
      pending = (async (): Promise<Fill> => {
        let task;
        // Not the caller's signal: others may join this download while it starts.
        const stalled = new AbortController();
        const stallTimer = setTimeout(() => stalled.abort(new TaskStartStalledError(request.digest, TASK_START_STALL_MS)), TASK_START_STALL_MS);
        stallTimer.unref();
        try {
          task = await this.components.supernodes.createTask(
            { digest: request.digest, registry: request.registry, repository: request.repository, sizeBytes: request.sizeBytes, peerId: this.peerId },
            request.registryAuthorization,
            stalled.signal,
            (waiting) => {
              // Queued behind fetches that move: as much progress as bytes would be.
              if (waiting.phase !== 'queued' || waiting.aheadQuietMs === undefined || waiting.aheadQuietMs > QUEUE_MOVING_MS) return;
              stallTimer.refresh();
              if (this.fills.has(request.digest)) this.progress.set(request.digest, Date.now());
            },
          );
        } catch (err) {
          // No supernode at all: peers found in the DHT, else the node fetches the
          // blob itself rather than leave every pull to containerd's fallback.
          if (!(err instanceof SwarmUnavailableError) || options.swarmOnly === true) throw stalled.signal.aborted ? stalled.signal.reason : err;
          if (this.components.discovery !== undefined) {
            try {
              return await DhtFill.start(
                { log: this.log, store: this.components.store, pieces: this.components.pieces, discovery: this.components.discovery, onPieceBytes: this.components.onPieceBytes, onProgress },
                { digest: request.digest, sizeBytes: request.sizeBytes, onDone },
              );
            } catch (dhtErr) {
              this.log.info({ digest: request.digest, err: (dhtErr as Error).message }, 'nothing in the DHT either');
            }
          }
          if (this.components.registry === undefined) throw err;
          // In the store before a reader waits on its first piece (RegistryFill's own begin runs later).
          await this.components.store.begin(request.digest, request.sizeBytes);
          return new RegistryFill(
            { log: this.log, store: this.components.store, registry: this.components.registry, onProgress },
            { digest: request.digest, registry: request.registry, repository: request.repository, sizeBytes: request.sizeBytes, authorization: request.registryAuthorization, onDone },
          );
        } finally {
          clearTimeout(stallTimer);
        }
        const { info, supernodeUrl } = task;
        await this.components.store.begin(request.digest, info.sizeBytes);
        // A supernode that holds the blob complete has matched it to its digest: its
        // piece hashes then vouch for the whole, and the node need not hash it twice.
        // One still filling it will, once it has (the Download asks): until then the
        // store does not hash the blob whole either.
        await this.components.store.setPieceHashes(request.digest, info.pieceSha256, info.complete ? { certified: true } : { certificationExpected: true });
        return new Download(
          { log: this.log, store: this.components.store, supernodes: this.components.supernodes, pieces: this.components.pieces, downloadLimiter: this.components.downloadLimiter, onPieceBytes: this.components.onPieceBytes, metrics: this.components.metrics, onProgress },
          { info, supernodeUrl, peerId: this.peerId, advertiseUrl: this.init.advertiseUrl, zone: this.init.zone, pieceWindow: this.init.pieceWindow ?? DEFAULT_PIECE_WINDOW, onDone },
        );
      })();
      this.fills.set(request.digest, pending);
      this.progress.set(request.digest, Date.now());
      pending.catch(() => {
        this.fills.delete(request.digest);
        this.progress.delete(request.digest);
      });
      const metrics = this.components.metrics;
      if (metrics !== undefined) {
        const startedMs = performance.now();
        const kind = (fill: Fill): FillKind => (fill instanceof RegistryFill ? 'registry' : fill instanceof DhtFill ? 'dht' : 'swarm');
        pending.then(
          (fill) => fill.done.then(
            () => metrics.fillDone(kind(fill), 'ok', (performance.now() - startedMs) / 1000),
            () => metrics.fillDone(kind(fill), 'failed', (performance.now() - startedMs) / 1000),
          ),
          () => metrics.fillDone('swarm', 'failed', (performance.now() - startedMs) / 1000),
        );
      }
    }
    return pending;
  }

  /**
   * Waits until piece `index` may be read. The final piece is held back until
   * the whole blob has matched its digest, so a reader never gets a complete,
   * wrong blob (but not until it is durable: that can take seconds on a busy disk).
   */
  private async waitReadable(layout: PieceLayout, digest: Digest, index: number, signal: AbortSignal): Promise<void> {
    if (index === layout.pieceCount - 1) await this.components.store.waitForVerified(digest, { signal });
    else await this.components.store.waitForPiece(digest, index, { signal });
  }

  close(): void {
    for (const pending of this.fills.values()) {
      pending.then((d) => d.cancel(new Error('peer shutting down')), () => undefined);
    }
  }
}

/**
 * A blob's bytes in order while this node is still filling it: each piece is
 * read once it is verified (the last once the whole blob matched its digest),
 * and the fill is told where the reader is, so it fetches those pieces first.
 */
class InOrderReader implements ChunkReader {
  private position: number;
  private readonly endExclusive: number;
  private readonly stored: ChunkReader;
  /** Aborts a wait for a piece when the reader closes. */
  private readonly closing = new AbortController();
  private readonly signal: AbortSignal;
  /** The piece whose bytes may be read now (it was waited for). */
  private readablePiece = -1;

  constructor(
    private readonly components: {
      store: PieceStoreApi;
      layout: PieceLayout;
      digest: Digest;
      signal: AbortSignal;
      attached: { setCursor: (piece: number) => void; detach: () => void };
      waitReadable: (index: number, signal: AbortSignal) => Promise<void>;
    },
    start: number,
    end: number,
  ) {
    this.position = start;
    this.endExclusive = end + 1;
    this.signal = AbortSignal.any([this.components.signal, this.closing.signal]);
    this.stored = end >= start ? this.components.store.openReader(this.components.digest, { start, end }) : emptyReader;
  }

  async read(into: Buffer): Promise<number> {
    if (this.position >= this.endExclusive) return 0;
    const index = Math.floor(this.position / this.components.layout.pieceSizeBytes);
    if (index !== this.readablePiece) {
      this.components.attached.setCursor(index);
      await this.components.waitReadable(index, this.signal);
      this.readablePiece = index;
    }
    const span = pieceSpan(this.components.layout, index);
    // Never past this piece: the next one has not been waited for.
    const want = Math.min(into.length, span.offset + span.length - this.position, this.endExclusive - this.position);
    const count = await this.stored.read(into.subarray(0, want));
    this.position += count;
    return count;
  }

  close(): void {
    this.closing.abort(new Error('reader closed'));
    this.stored.close();
    this.components.attached.detach();
  }
}

const emptyReader: ChunkReader = { read: async () => 0, close: () => undefined };
