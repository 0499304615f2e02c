import type { FastifyInstance } from 'fastify';
import {
  API_PREFIX,
  BadRequestError,
  BlobUnknownError,
  HEADER,
  parseDigest,
  parseRegistryHost,
  parseRepository,
  parseWire,
  PIECE_WAIT_MS,
  PieceUnavailableError,
  pieceSpan,
  TaskRequestSchema,
  type ChunkReader,
  type Digest,
} from '@shoal/core';
import { counter, replyWithReader } from '@shoal/service-kit';
import type { PieceStoreApi } from '@shoal/store';
import type { BlobTasks } from '../blob-tasks.js';

export interface BlobRoutesOptions {
  store: PieceStoreApi;
  tasks: BlobTasks;
  /** Told how each piece send goes (see Swarm.seedSending): every SEND_PROGRESS_EVERY_MS while its response is open, then once at the end. */
  onPieceSending?: ((digest: Digest, piece: number, state: 'progress' | 'done' | 'failed') => void) | undefined;
}

/**
 * While a piece send is open it reports progress this often. Milliseconds. The
 * sender hands a whole piece to the socket at once (its read-ahead is larger
 * than a piece), so reads say nothing about how far the bytes got: an open
 * response whose socket has not failed is a copy in progress.
 */
const SEND_PROGRESS_EVERY_MS = 500;
/**
 * An open piece send stops counting as progress after this long: a child that
 * froze keeps its connection open, and must not keep the piece from others.
 * Milliseconds: 1 MiB at 150 kbit/s.
 */
const SEND_PROGRESS_MAX_MS = 60_000;

/**
 * After the last byte was handed to the socket, the send still counts as
 * progress this long. Milliseconds. Handed over is not delivered: at 25 Mbit/s
 * shared by a few flows, a piece sits in the socket's buffers for seconds, and
 * a copy reported finished too early was handed out again to another child
 * before the first one could announce it (bench:swarm). The child's
 * announcement ends the copy sooner.
 */
const SEND_DRAIN_PROGRESS_MS = 10_000;

/** `reader`, telling `report` while the response it feeds is open (and draining), and how it ended. */
function reportingReader(reader: ChunkReader, bytes: number, report: (state: 'progress' | 'done' | 'failed') => void): ChunkReader {
  let read = 0;
  let ended = false;
  let timer: NodeJS.Timeout | undefined;
  const openedAt = performance.now();
  let reportUntil = openedAt + SEND_PROGRESS_MAX_MS;
  return {
    read: async (into) => {
      if (timer === undefined && !ended) {
        report('progress');
        timer = setInterval(() => {
          if (performance.now() < reportUntil) report('progress');
          else clearInterval(timer);
        }, SEND_PROGRESS_EVERY_MS);
        timer.unref();
      }
      const count = await reader.read(into);
      read += count;
      return count;
    },
    close: () => {
      reader.close();
      if (ended) return;
      ended = true;
      const done = read >= bytes;
      report(done ? 'done' : 'failed');
      if (done) reportUntil = Math.min(reportUntil, performance.now() + SEND_DRAIN_PROGRESS_MS);
      else clearInterval(timer);
    },
  };
}

function parseIndex(text: string): number {
  if (!/^\d{1,9}$/.test(text)) throw new BadRequestError(`invalid piece index ${JSON.stringify(text.slice(0, 20))}`);
  return Number(text);
}

/** The peer-facing API: start or join a blob's download, read its pieces. */
export async function blobRoutes(app: FastifyInstance, options: BlobRoutesOptions): Promise<void> {
  const { store, tasks } = options;
  const piecesServed = counter(app.metrics, 'shoal_supernode_pieces_served_total', 'Pieces sent to peers');
  const bytesServed = counter(app.metrics, 'shoal_supernode_bytes_served_total', 'Piece bytes sent to peers');

  app.post(`${API_PREFIX}/tasks`, { bodyLimit: 16 * 1024 }, async (request) => {
    const body = parseWire(TaskRequestSchema, request.body, 'task request');
    const digest = parseDigest(body.digest);
    const registry = parseRegistryHost(body.registry);
    const repository = parseRepository(body.repository);
    const auth = request.headers[HEADER.registryAuthorization];
    const authorization = Array.isArray(auth) ? auth[0] : auth;
    return tasks.ensure({ ...body, digest, registry, repository }, authorization);
  });

  app.get<{ Params: { digest: string } }>(`${API_PREFIX}/blobs/:digest/info`, async (request) => {
    const digest = parseDigest(request.params.digest);
    const info = tasks.info(digest);
    if (info === undefined) throw new BlobUnknownError(digest);
    return info;
  });

  app.get<{ Params: { digest: string; index: string } }>(`${API_PREFIX}/blobs/:digest/pieces/:index`, async (request, reply) => {
    const digest = parseDigest(request.params.digest);
    const index = parseIndex(request.params.index);
    const receivedAt = performance.now();
    const record = store.get(digest);
    if (record === undefined) throw new BlobUnknownError(digest);
    if (index >= record.layout.pieceCount) throw new BadRequestError(`piece ${index} out of range for ${digest}`);
    if (!store.hasPiece(digest, index)) {
      if (!tasks.isInflight(digest)) throw new PieceUnavailableError(digest, index);
      // The piece is still on its way from the registry: hold the request until it lands.
      const gone = new AbortController();
      const onClose = (): void => gone.abort(new Error('peer went away'));
      request.raw.once('close', onClose);
      try {
        await store.waitForPiece(digest, index, { signal: AbortSignal.any([gone.signal, AbortSignal.timeout(PIECE_WAIT_MS)]) });
      } catch {
        throw new PieceUnavailableError(digest, index);
      } finally {
        request.raw.off('close', onClose);
      }
    }
    const waitedMs = Math.round(performance.now() - receivedAt);
    const current = store.get(digest);
    const sha = current?.pieceSha256[index];
    if (current === undefined || sha === null || sha === undefined) throw new PieceUnavailableError(digest, index);
    const { offset, length } = pieceSpan(current.layout, index);
    piecesServed.inc();
    bytesServed.inc(length);
    const reader = store.openReader(digest, { start: offset, end: offset + length - 1 });
    const onSending = options.onPieceSending;
    const report = (state: 'progress' | 'done' | 'failed'): void => {
      onSending?.(digest, index, state);
      if (state !== 'progress') request.log.trace({ digest, piece: index, peer: request.ip, waitedMs, sendMs: Math.round(performance.now() - receivedAt) - waitedMs, state }, 'piece sent');
    };
    return replyWithReader(reply, reportingReader(reader, length, report), {
      headers: { [HEADER.pieceSha256]: sha, 'content-length': length, 'content-type': 'application/octet-stream' },
      bytes: length,
    });
  });
}
