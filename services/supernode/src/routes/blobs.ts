import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  API_PREFIX,
  BadRequestError,
  BlobUnknownError,
  HEADER,
  MAX_TASK_WAIT_MS,
  parseDigest,
  parseRegistryHost,
  parseRepository,
  parseWire,
  PieceUnavailableError,
  pieceSpan,
  TaskRequestSchema,
  type ChunkReader,
  type Digest,
  type PieceHash,
} from '@shoal/core';
import { counter, replyWithReader, SendSlots, whileConnected } from '@shoal/service-kit';
import type { IngestingPieceReader, PieceStoreApi } from '@shoal/store';
import type { BlobTasks } from '../blob-tasks.js';
import { holdWhileFetching } from '../piece-hold.js';

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
/**
 * Piece sends at once; the rest wait their turn in arrival order. One after
 * another, each piece crosses the supernode's link at full speed and its child
 * passes it on at once; side by side, all of them arrive late together (at
 * 10 Mbit/s, 20 sends at once took 20 s each, and the swarm waited). A few, not
 * one: a slow child must not hold the link alone.
 */
export const SEED_SENDS_AT_ONCE = 4;
/** Requests waiting for a send slot at most; beyond, the child is told the seed is busy and asks elsewhere. */
const MAX_QUEUED_SENDS = 4_096;
/**
 * Cut-through sends at once: pieces passed on while they arrive from the
 * registry. They take no send slot: each moves only as fast as its piece
 * arrives, and a slot held by one would idle the link. Beyond this many, a
 * request waits for the verified piece like any other, then for a slot. Few:
 * a send outlives its piece's arrival when its child takes the bytes slowly,
 * and many such sends split the supernode's link the way the slots prevent.
 * In the simulator (load-tests; 4 frontier claims per child at the time), 8
 * kept the gain at 1 to 1,000 nodes (N=16, 10 Mbit/s: 1.50 → 1.45 × S/B)
 * where 10 or more made 10,000 nodes 2.40 × S/B instead of 1.93 without
 * cut-through (8: 1.98).
 */
const MAX_CUT_THROUGH_SENDS = 8;

/**
 * A piece send as the swarm sees it: in progress from the moment it is queued
 * (the seed is alive and will serve it; a copy waiting its turn must not look
 * dead to the scheduler's patience) until it ends, then `done` or `failed`.
 */
class SendReport {
  private timer: NodeJS.Timeout | undefined;
  private ended = false;
  private reportUntil: number;

  constructor(private readonly report: (state: 'progress' | 'done' | 'failed') => void) {
    this.reportUntil = performance.now() + SEND_PROGRESS_MAX_MS;
    report('progress');
    this.timer = setInterval(() => {
      if (performance.now() < this.reportUntil) report('progress');
      else clearInterval(this.timer);
    }, SEND_PROGRESS_EVERY_MS);
    this.timer.unref();
  }

  end(done: boolean): void {
    if (this.ended) return;
    this.ended = true;
    this.report(done ? 'done' : 'failed');
    if (done) this.reportUntil = Math.min(this.reportUntil, performance.now() + SEND_DRAIN_PROGRESS_MS);
    else clearInterval(this.timer);
  }
}

/** `reader`, ending `sending` and releasing the send slot when it closes. */
function reportingReader(reader: ChunkReader, bytes: number, sending: SendReport, release: () => void): ChunkReader {
  let read = 0;
  return {
    read: async (into) => {
      const count = await reader.read(into);
      read += count;
      return count;
    },
    close: () => {
      reader.close();
      release();
      sending.end(read >= bytes);
    },
  };
}

/** `?waitMs=` of a task call: absent, or whole milliseconds up to MAX_TASK_WAIT_MS. */
function parseTaskWaitMs(text: unknown): number | undefined {
  if (text === undefined) return undefined;
  if (typeof text !== 'string' || !/^\d{1,6}$/.test(text) || Number(text) > MAX_TASK_WAIT_MS) {
    throw new BadRequestError(`invalid waitMs ${JSON.stringify(String(text).slice(0, 20))}: whole milliseconds, at most ${MAX_TASK_WAIT_MS}`);
  }
  return Number(text);
}

function parseIndex(text: string): number {
  if (!/^\d{1,9}$/.test(text)) throw new BadRequestError(`invalid piece index ${JSON.stringify(text.slice(0, 20))}`);
  return Number(text);
}

/** The peer-facing API: start or join a blob's download, read its pieces. */
export async function blobRoutes(app: FastifyInstance, options: BlobRoutesOptions): Promise<void> {
  const { store, tasks } = options;
  const slots = new SendSlots(SEED_SENDS_AT_ONCE, MAX_QUEUED_SENDS);
  const piecesServed = counter(app.metrics, 'shoal_supernode_pieces_served_total', 'Pieces sent to peers');
  const bytesServed = counter(app.metrics, 'shoal_supernode_bytes_served_total', 'Piece bytes sent to peers');
  const cutThroughServed = counter(app.metrics, 'shoal_supernode_pieces_cut_through_total', 'Pieces sent to peers while they arrived from the registry');
  let cutThroughSends = 0;

  /**
   * Sends a piece while it arrives from the registry: its bytes as they come,
   * its hash as the HEADER.pieceSha256 trailer once the whole piece matched
   * (the child checks the bytes against it before it keeps them). Chunked, so
   * that the trailer can follow; a failed ingest cuts the body.
   */
  const sendCutThrough = (request: FastifyRequest, reply: FastifyReply, digest: Digest, index: number, length: number, tail: IngestingPieceReader, waitedMs: number): FastifyReply => {
    cutThroughSends++;
    const sending = new SendReport((state) => {
      options.onPieceSending?.(digest, index, state);
      if (state !== 'progress') request.log.trace({ digest, piece: index, peer: request.ip, waitedMs, cutThrough: true, state }, 'piece sent');
    });
    piecesServed.inc();
    cutThroughServed.inc();
    bytesServed.inc(length);
    return replyWithReader(
      reply,
      reportingReader(tail, length, sending, () => {
        cutThroughSends--;
      }),
      {
        headers: { trailer: HEADER.pieceSha256, 'content-type': 'application/octet-stream' },
        bytes: length,
        trailers: () => {
          // The reader ended, so the piece matched and its hash is known.
          const sha = tail.sha256;
          if (sha === undefined) throw new PieceUnavailableError(digest, index);
          return { [HEADER.pieceSha256]: sha };
        },
      },
    );
  };

  // With `?waitMs=`, a blob whose fetch has not begun within that long is answered
  // 202 with where it stands (TaskWaiting), and the node asks again; without, the
  // call is held until the fetch begins (peers of older versions).
  app.post<{ Querystring: { waitMs?: string } }>(`${API_PREFIX}/tasks`, { bodyLimit: 16 * 1024 }, async (request, reply) => {
    const body = parseWire(TaskRequestSchema, request.body, 'task request');
    const digest = parseDigest(body.digest);
    const registry = parseRegistryHost(body.registry);
    const repository = parseRepository(body.repository);
    const auth = request.headers[HEADER.registryAuthorization];
    const authorization = Array.isArray(auth) ? auth[0] : auth;
    const task = { ...body, digest, registry, repository };
    const waitMs = parseTaskWaitMs(request.query.waitMs);
    if (waitMs === undefined) return tasks.ensure(task, authorization);
    const answer = await tasks.ensureWithin(task, authorization, waitMs);
    if ('phase' in answer) return reply.code(202).send(answer);
    return answer;
  });

  app.get<{ Params: { digest: string } }>(`${API_PREFIX}/blobs/:digest/info`, async (request) => {
    const digest = parseDigest(request.params.digest);
    const info = tasks.info(digest);
    if (info === undefined) throw new BlobUnknownError(digest);
    return info;
  });

  // The hash a child checks a peer's cut-through copy against: known here once this
  // copy matched, which comes before the peer's copy can (it follows this one).
  app.get<{ Params: { digest: string; index: string } }>(`${API_PREFIX}/blobs/:digest/pieces/:index/sha256`, async (request) => {
    const digest = parseDigest(request.params.digest);
    const index = parseIndex(request.params.index);
    const record = store.get(digest);
    if (record === undefined) throw new BlobUnknownError(digest);
    if (index >= record.layout.pieceCount) throw new BadRequestError(`piece ${index} out of range for ${digest}`);
    if (!store.hasPiece(digest, index)) {
      if (!tasks.isInflight(digest)) throw new PieceUnavailableError(digest, index);
      const deadline = holdWhileFetching(tasks, store, digest, index);
      try {
        await whileConnected(request.raw, (gone) => store.waitForPiece(digest, index, { signal: AbortSignal.any([gone, deadline.signal]) }));
      } catch {
        throw new PieceUnavailableError(digest, index);
      } finally {
        deadline.clear();
      }
    }
    const sha256 = store.get(digest)?.pieceSha256[index];
    if (sha256 === null || sha256 === undefined) throw new PieceUnavailableError(digest, index);
    return { sha256 } satisfies PieceHash;
  });

  app.get<{ Params: { digest: string; index: string } }>(`${API_PREFIX}/blobs/:digest/pieces/:index`, async (request, reply) => {
    const digest = parseDigest(request.params.digest);
    const index = parseIndex(request.params.index);
    const receivedAt = performance.now();
    const record = store.get(digest);
    if (record === undefined) throw new BlobUnknownError(digest);
    if (index >= record.layout.pieceCount) throw new BadRequestError(`piece ${index} out of range for ${digest}`);
    let tail: IngestingPieceReader | undefined;
    if (!store.hasPiece(digest, index)) {
      if (!tasks.isInflight(digest)) throw new PieceUnavailableError(digest, index);
      // The piece is still on its way from the registry: passed on from its first
      // byte (cut-through), else the request is held until it lands.
      const deadline = holdWhileFetching(tasks, store, digest, index);
      try {
        while (!store.hasPiece(digest, index)) {
          if (cutThroughSends < MAX_CUT_THROUGH_SENDS) tail = store.openIngestingPiece(digest, index);
          if (tail !== undefined) break;
          try {
            await whileConnected(request.raw, (gone) => {
              const signal = AbortSignal.any([gone, deadline.signal]);
              return cutThroughSends < MAX_CUT_THROUGH_SENDS ? store.waitForPieceOrIngest(digest, index, { signal }) : store.waitForPiece(digest, index, { signal });
            });
          } catch {
            throw new PieceUnavailableError(digest, index);
          }
        }
      } finally {
        deadline.clear();
      }
    }
    const waitedMs = Math.round(performance.now() - receivedAt);
    if (tail !== undefined) return sendCutThrough(request, reply, digest, index, pieceSpan(record.layout, index).length, tail, waitedMs);
    const current = store.get(digest);
    const sha = current?.pieceSha256[index];
    if (current === undefined || sha === null || sha === undefined) throw new PieceUnavailableError(digest, index);
    const { offset, length } = pieceSpan(current.layout, index);
    const sending = new SendReport((state) => {
      options.onPieceSending?.(digest, index, state);
      if (state !== 'progress') request.log.trace({ digest, piece: index, peer: request.ip, waitedMs, sendMs: Math.round(performance.now() - receivedAt) - waitedMs, state }, 'piece sent');
    });
    let release: (() => void) | undefined;
    try {
      release = await whileConnected(request.raw, (gone) => slots.acquire(gone));
    } catch {
      sending.end(false);
      throw new PieceUnavailableError(digest, index);
    }
    if (release === undefined) {
      sending.end(false);
      return reply.code(503).send({ code: 'SHOAL_BUSY', message: `${MAX_QUEUED_SENDS} piece sends queued already` });
    }
    let reader: ChunkReader;
    try {
      reader = store.openReader(digest, { start: offset, end: offset + length - 1 });
    } catch (err) {
      release();
      sending.end(false);
      throw err;
    }
    piecesServed.inc();
    bytesServed.inc(length);
    return replyWithReader(reply, reportingReader(reader, length, sending, release), {
      headers: { [HEADER.pieceSha256]: sha, 'content-length': length, 'content-type': 'application/octet-stream' },
      bytes: length,
    });
  });
}
