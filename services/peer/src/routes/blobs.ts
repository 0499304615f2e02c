import type { FastifyInstance } from 'fastify';
import {
  API_PREFIX,
  BadRequestError,
  BlobUnknownError,
  CorruptAtRestError,
  HEADER,
  parseDigest,
  parseRange,
  parseRegistryHost,
  parseRepository,
  PieceUnavailableError,
  pieceSpan,
  MAX_BLOB_SIZE_BYTES,
  type ChunkReader,
  type Digest,
  withDeadline,
} from '@shoal/core';
import { counter, readerOfStream, readFirstChunk, replyWithReader, SendSlots, type FirstChunk } from '@shoal/service-kit';
import type { PieceStoreApi } from '@shoal/store';
import type { BlobProvider, BlobStream } from '@shoal/core';
import type { RateLimiter } from '../rate-limit.js';

/** Piece requests this peer takes at once at most (sending or waiting their turn); more are refused with 503 so the child tries another parent. */
export const DEFAULT_MAX_UPLOADS = 16;
/**
 * Pieces this peer sends at once; the other requests it took wait their turn
 * (see SendSlots). Two at full speed each spread a new piece through the swarm
 * far sooner than eight at an eighth each (at 10 Mbit/s, 1 MiB took 7 s to a
 * child, and the copy could only then be passed on); two, not one, so a child
 * with a slow link does not hold the uplink alone.
 */
export const PEER_SENDS_AT_ONCE = 2;
/**
 * Relays at once: sends of pieces still arriving here. They take no send slot:
 * each moves only as fast as its piece arrives, and a slot held by one kept the
 * requests queued behind it waiting for headers past the child's limit, after
 * which the child went to the supernode (bench:swarm, N=16, 64 MiB in 10
 * layers, 10 Mbit/s: the supernode sent the image 1.60–1.95 times and p50 was
 * 1.92–1.96 × S/B; with relays outside the slots 1.12–1.21 and 1.45–1.52).
 * The supernode's cut-through sends work the same way. Past this many, a relay
 * takes a slot like any other send. Four is a bound, not a tuned value.
 */
export const RELAYS_AT_ONCE = 4;

function parseIndex(text: string): number {
  if (!/^\d{1,9}$/.test(text)) throw new BadRequestError(`invalid piece index ${JSON.stringify(text.slice(0, 20))}`);
  return Number(text);
}

function parseSize(text: string | undefined): number {
  if (text === undefined || !/^\d{1,15}$/.test(text) || Number(text) > MAX_BLOB_SIZE_BYTES) throw new BadRequestError('size must be a byte count');
  return Number(text);
}

/**
 * The piece's first bytes, read before any header: the store checks the piece
 * against its recorded hash as it reads it, so a piece changed on this disk is
 * answered as not held (the store dropped the blob and told the supernode)
 * instead of being sent under its hash.
 */
async function readVerifiedStart(reader: ChunkReader, digest: Digest, index: number, bytes: number): Promise<FirstChunk> {
  try {
    return await readFirstChunk(reader, bytes);
  } catch (err) {
    reader.close();
    if (err instanceof CorruptAtRestError) throw new PieceUnavailableError(digest, index);
    throw err;
  }
}

/**
 * How long a request for a piece this node does not hold waits for it to
 * begin arriving, counted from the request or from this node's last progress
 * in filling the blob, whichever is later. The scheduler names a node as a
 * parent once the piece's first bytes land there, or, in a chain, once the
 * piece is assigned to it: the wait covers a copy that failed and is fetched
 * again, and a chain link's copy that is still on its way behind the others.
 */
export const RELAY_WAIT_MS = 2_000;
/**
 * The longest a request waits for its piece to begin arriving, however the
 * fill progresses: below a child's patience for a parent's headers
 * (PEER_HEADERS_TIMEOUT_MS, 10 s), so the child hears "not here" and moves on
 * before it gives up on the parent. A chain's requests ahead wait here for
 * their link's copy (SchedulerInit.chainMembers): with a fixed 2 s, 112 of one
 * pull's ran out (N = 16, 25 Mbit/s) and it took 1.49 × S/B.
 */
export const RELAY_WAIT_MAX_MS = 8_000;

/**
 * A cut-through reader of piece `index` while it arrives here (waiting for it
 * to begin as RELAY_WAIT_MS says), or undefined: held by then, or not coming.
 * `progressAt` is when this node last received bytes while filling the blob.
 */
async function arrivingPiece(
  store: PieceStoreApi,
  digest: Digest,
  index: number,
  gone: AbortSignal,
  progressAt: (digest: Digest) => number | undefined,
): Promise<ChunkReader | undefined> {
  const start = Date.now();
  for (;;) {
    const waitMs = Math.min(start + RELAY_WAIT_MAX_MS, Math.max(start, progressAt(digest) ?? 0) + RELAY_WAIT_MS) - Date.now();
    if (waitMs <= 0 || gone.aborted) return undefined;
    const { signal, clear } = withDeadline(gone, waitMs);
    try {
      for (;;) {
        if (store.hasPiece(digest, index)) return undefined;
        const tail = store.openIngestingPiece(digest, index);
        if (tail !== undefined) return tail;
        await store.waitForPieceOrIngest(digest, index, { signal });
      }
    } catch {
      // Waited out, or the child went away: look at the fill's progress again. Anything else: not coming.
      if (!signal.aborted) return undefined;
    } finally {
      clear();
    }
  }
}

/** What other peers read from this one (verified pieces) and what a separate proxy reads (whole blobs). */
export interface PeerBlobRoutesOptions {
  store: PieceStoreApi;
  peer: BlobProvider;
  /** @default DEFAULT_MAX_UPLOADS */
  maxUploads?: number | undefined;
  uploadLimiter?: RateLimiter | undefined;
}

export async function peerBlobRoutes(app: FastifyInstance, options: PeerBlobRoutesOptions): Promise<void> {
  const { store, peer } = options;
  const maxUploads = options.maxUploads ?? DEFAULT_MAX_UPLOADS;
  let uploads = 0;
  const slots = new SendSlots(PEER_SENDS_AT_ONCE, Number.MAX_SAFE_INTEGER);
  // Relays' own slots, none waiting: a relay past them takes a send slot instead.
  const relaySlots = new SendSlots(RELAYS_AT_ONCE, 0);
  const piecesServed = counter(app.metrics, 'shoal_peer_pieces_served_total', 'Pieces sent to other peers');
  const uploadsRefused = counter(app.metrics, 'shoal_peer_uploads_refused_total', 'Piece requests refused because max uploads were running');
  const relayed = counter(app.metrics, 'shoal_peer_pieces_relayed_total', 'Pieces sent to other peers while they still arrived here (cut-through)');
  const piecesMissing = counter(
    app.metrics,
    'shoal_peer_pieces_missing_total',
    'Piece requests for pieces this node does not hold: the scheduler sent a child here on a stale view (should stay near zero)',
  );

  app.get<{ Params: { digest: string } }>(`${API_PREFIX}/blobs/:digest/info`, async (request) => {
    const digest = parseDigest(request.params.digest);
    const record = store.get(digest);
    if (record === undefined) throw new BlobUnknownError(digest);
    return {
      digest,
      sizeBytes: record.layout.blobSizeBytes,
      pieceSizeBytes: record.layout.pieceSizeBytes,
      pieceCount: record.layout.pieceCount,
      pieceSha256: record.pieceSha256,
      complete: record.complete,
    };
  });

  app.get<{ Params: { digest: string; index: string } }>(`${API_PREFIX}/blobs/:digest/pieces/:index`, async (request, reply) => {
    const digest = parseDigest(request.params.digest);
    const index = parseIndex(request.params.index);
    const record = store.get(digest);
    if (record === undefined || index >= record.layout.pieceCount) {
      piecesMissing.inc();
      throw new PieceUnavailableError(digest, index);
    }
    if (uploads >= maxUploads) {
      uploadsRefused.inc();
      return reply.code(503).send({ code: 'SHOAL_BUSY', message: `serving ${uploads} pieces already` });
    }
    uploads++;
    const gone = new AbortController();
    let release: (() => void) | undefined;
    reply.raw.once('close', () => {
      uploads--;
      gone.abort(new Error('child went away'));
      release?.();
    });
    // A piece still arriving here is passed on as it comes (the scheduler names this
    // node as soon as its first bytes land); one about to arrive is waited for briefly.
    const relay = store.hasPiece(digest, index) ? undefined : await arrivingPiece(store, digest, index, gone.signal, (d) => peer.progressAt?.(d));
    if (relay === undefined && !store.hasPiece(digest, index)) {
      piecesMissing.inc();
      throw new PieceUnavailableError(digest, index);
    }
    // Bounded by maxUploads above: at most that many wait here.
    try {
      if (relay !== undefined) release = await relaySlots.acquire(gone.signal);
      release ??= await slots.acquire(gone.signal);
    } catch (err) {
      relay?.close();
      throw err;
    }
    piecesServed.inc();
    const span = pieceSpan(record.layout, index);
    const limiter = options.uploadLimiter;
    const beforeWrite = limiter === undefined ? undefined : (bytes: number): Promise<void> => limiter.take(bytes);
    if (relay !== undefined) {
      relayed.inc();
      // No hash header: a child checks a peer's bytes only against the supernode's hash.
      // The body ends only once this node's own copy matched; a failed piece cuts it.
      return replyWithReader(reply, relay, { headers: { 'content-length': span.length, 'content-type': 'application/octet-stream' }, bytes: span.length, beforeWrite });
    }
    const sha = store.get(digest)?.pieceSha256[index];
    if (sha === null || sha === undefined) throw new PieceUnavailableError(digest, index);
    const reader = store.openPieceReader(digest, index);
    const first = await readVerifiedStart(reader, digest, index, span.length);
    return replyWithReader(reply, reader, {
      headers: { [HEADER.pieceSha256]: sha, 'content-length': span.length, 'content-type': 'application/octet-stream' },
      bytes: span.length,
      first,
      beforeWrite,
    });
  });

  app.get<{ Params: { digest: string }; Querystring: Record<string, string | undefined> }>(`${API_PREFIX}/blobs/:digest`, async (request, reply) => {
    const digest = parseDigest(request.params.digest);
    const registry = parseRegistryHost(request.query.registry ?? '');
    const repository = parseRepository(request.query.repository ?? '');
    const sizeBytes = parseSize(request.query.size);
    const auth = request.headers[HEADER.registryAuthorization];
    const range = parseRange(request.headers.range, sizeBytes);
    const abort = new AbortController();
    request.raw.once('close', () => abort.abort(new Error('client went away')));
    const open = (): Promise<BlobStream> =>
      peer.openBlob({ registry, repository, digest, sizeBytes, registryAuthorization: Array.isArray(auth) ? auth[0] : auth }, range, { signal: abort.signal });
    let blob = await open();
    let first: FirstChunk | undefined;
    if (blob.reader !== undefined && (range !== undefined || sizeBytes > 0)) {
      try {
        first = await readFirstChunk(blob.reader, range === undefined ? sizeBytes : range.end - range.start + 1);
      } catch (err) {
        blob.reader.close();
        if (!(err instanceof CorruptAtRestError)) throw err;
        // This node's copy changed on disk and was dropped: the swarm serves a fresh one.
        blob = await open();
      }
    }
    const bytes = range === undefined ? blob.sizeBytes : range.end - range.start + 1;
    reply.header(HEADER.source, blob.source).type('application/octet-stream').header('content-length', bytes);
    if (range !== undefined) reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${blob.sizeBytes}`);
    // One body model to the socket: a stream (the registry's, while this node fetches it) goes through the same sender.
    const reader = blob.reader !== undefined ? blob.reader : readerOfStream(blob.body);
    return replyWithReader(reply, reader, { statusCode: range === undefined ? 200 : 206, headers: {}, bytes, first });
  });
}
