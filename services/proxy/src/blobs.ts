import { performance } from 'node:perf_hooks';
import { pipeline, type Readable, type Transform } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  destroyQuietly,
  abortable,
  CorruptAtRestError,
  DigestVerifier,
  HEADER,
  MAX_BLOB_SIZE_BYTES,
  parseRange,
  RangeInvalidError,
  SizeMismatchError,
  type BlobRequest,
  type BlobSource,
  type BlobStream,
  type ByteRange,
  type ChunkReader,
  type Digest,
} from '@shoal/core';
import { readerOfStream, ReaderIdleTimeoutError, replyWithReader, sendBuffers } from '@shoal/service-kit';
import { ClientGoneError, EmptyBodyError, FirstByteTimeoutError } from './errors.js';
import { API_VERSION, API_VERSION_HEADER, clientGoneSignal, headerValue, refusalAnswer, sendOciError } from './oci-reply.js';
import type { ProxyContext } from './plugins/context.js';
import type { FallbackReason } from './plugins/metrics.js';
import { HoldLastChunk, SliceBytes, waitFirstByte } from './streams.js';
import { checkAccessOrRemember } from './outage.js';
import { discard, pickHeaders } from './upstream.js';

export interface BlobTarget {
  registry: string;
  repository: string;
  digest: Digest;
}

/** Everything one blob request carries from step to step. */
interface BlobExchange {
  readonly ctx: ProxyContext;
  readonly request: FastifyRequest;
  readonly reply: FastifyReply;
  readonly target: BlobTarget;
  readonly authorization: string | undefined;
  readonly sizeBytes: number;
  readonly range: ByteRange | undefined;
  /** Aborted when the client goes away before its response is complete. */
  readonly clientSignal: AbortSignal;
  readonly startedAt: number;
}

/**
 * Blobs: access check and size upstream (HEAD with the client's credential),
 * then the bytes from the swarm, or from the registry when the swarm cannot
 * start within the first-byte timeout. Once bytes flow, any failure destroys
 * the connection so containerd sees a truncated body and resumes with Range.
 */
export async function serveBlob(ctx: ProxyContext, request: FastifyRequest, reply: FastifyReply, target: BlobTarget): Promise<FastifyReply> {
  const startedAt = performance.now();
  const authorization = headerValue(request.headers.authorization);
  const clientSignal = clientGoneSignal(reply, () => new ClientGoneError());

  // Step 1: may this client read the blob, and how big is it? When the
  // registry is unreachable or answers 5xx, the check cannot be made: a grant
  // this credential got for this blob within `grantMemoryMs` stands in for it
  // (with the size remembered with it). Without one, an unreachable registry
  // throws UpstreamError (502/504 from the error handler) and a 5xx becomes
  // 503: containerd moves on to `server`, and a private blob goes to nobody.
  const access = await checkAccessOrRemember(ctx, request.log, { kind: 'blob', authorization, ...target }, { signal: clientSignal });
  if (!access.ok) {
    const answer = refusalAnswer('blob', access.upstreamStatus, `${target.repository}@${target.digest}`);
    request.log.debug({ ...target, upstreamStatus: access.upstreamStatus, status: answer.statusCode }, 'blob refused upstream');
    return sendOciError(reply, answer.statusCode, answer.code, answer.message, access.headers);
  }
  const sizeBytes = access.grant.sizeBytes;
  if (request.method === 'HEAD') return reply.code(200).headers({ ...blobHeaders(target.digest), 'content-length': String(sizeBytes) }).send();

  let range: ByteRange | undefined;
  try {
    range = parseRange(headerValue(request.headers.range), sizeBytes);
  } catch (err) {
    if (!(err instanceof RangeInvalidError)) throw err;
    return sendOciError(reply, 416, 'RANGE_INVALID', err.message, { 'content-range': `bytes */${sizeBytes}` });
  }
  const exchange: BlobExchange = { ctx, request, reply, target, authorization, sizeBytes, range, clientSignal, startedAt };

  // The swarm's wire format carries blobs up to MAX_BLOB_SIZE_BYTES: a larger
  // one is not offered to it at all, and says so under its own reason.
  if (sizeBytes > MAX_BLOB_SIZE_BYTES) {
    request.server.proxyMetrics.fallbacks.inc({ reason: 'too_large' });
    request.log.info({ ...target, sizeBytes, maxBytes: MAX_BLOB_SIZE_BYTES }, 'blob larger than the swarm carries; fetching it from the registry');
    return serveFromRegistry(exchange);
  }
  let swarm = await openFromSwarm(exchange);
  // This node's copy changed on disk: the store dropped it (and told the supernode), so the swarm serves a fresh one.
  if (!swarm.ok && swarm.error instanceof CorruptAtRestError) swarm = await openFromSwarm(exchange);
  if (swarm.ok) {
    const onFailure = (err: Error): void => {
      swarm.controller.abort(err);
      request.log.warn({ err, ...target, source: swarm.stream.source }, 'swarm failed mid-body; connection cut so the client resumes with Range');
    };
    if (swarm.stream.reader !== undefined) return sendFromReader(exchange, swarm.stream.source, swarm.stream.reader, swarm.first, onFailure);
    return streamBody(exchange, swarm.stream.source, swarm.stream.body, [], onFailure);
  }
  if (clientSignal.aborted) return abandon(reply);
  request.server.proxyMetrics.fallbacks.inc({ reason: swarm.reason });
  request.log.info(
    { ...target, reason: swarm.reason, error: swarm.error instanceof Error ? swarm.error.message : String(swarm.error) },
    'swarm could not serve the blob; fetching it from the registry',
  );
  return serveFromRegistry(exchange);
}

type SwarmOpening =
  /** `first`: the reader's first bytes, read to know the swarm can deliver (in a sendBuffers buffer). */
  | { ok: true; stream: BlobStream; controller: AbortController; first: FirstChunk | undefined }
  | { ok: false; reason: FallbackReason; error: unknown };

/**
 * Asks the swarm for the blob and waits for its first byte, within the
 * first-byte timeout. Only then is the answer committed to the swarm: anything
 * that goes wrong before leaves the registry as a clean fallback.
 */
async function openFromSwarm(exchange: BlobExchange): Promise<SwarmOpening> {
  const { ctx, target, range, clientSignal } = exchange;
  const controller = new AbortController();
  const onClientGone = (): void => controller.abort(clientSignal.reason);
  if (clientSignal.aborted) onClientGone();
  else clientSignal.addEventListener('abort', onClientGone, { once: true });
  const timeoutMs = ctx.config.firstByteTimeoutMs;
  // Patience is measured in progress: the timer starts over whenever bytes of
  // the blob reach the node, whichever piece they belong to.
  const progress = progressClock(ctx, target.digest);
  const timer = setInterval(() => {
    if (progress.idleMs() >= timeoutMs) controller.abort(new FirstByteTimeoutError(timeoutMs));
    else rearmIdleTimer(exchange);
  }, Math.min(timeoutMs, PROGRESS_CHECK_MS));
  timer.unref();

  const request: BlobRequest = { ...target, sizeBytes: exchange.sizeBytes, registryAuthorization: exchange.authorization };
  const expectedBytes = range === undefined ? exchange.sizeBytes : range.end - range.start + 1;
  let stream: BlobStream | undefined;
  let opening: Promise<BlobStream> | undefined;
  try {
    opening = ctx.blobs.openBlob(request, range, { signal: controller.signal });
    stream = await abortable(opening, controller.signal);
    // From here on a failure of the body is handled where it is read (first
    // byte, then the pipeline); this listener only keeps an error emitted in
    // between from becoming an uncaught exception.
    stream.body?.on('error', () => {});
    if (stream.sizeBytes !== exchange.sizeBytes) {
      throw new SizeMismatchError(`the swarm has ${stream.sizeBytes} bytes for ${target.digest}, the registry says ${exchange.sizeBytes}`);
    }
    if (stream.reader !== undefined) {
      const first = expectedBytes === 0 ? undefined : await readFirstChunk(stream.reader, expectedBytes, controller.signal);
      return { ok: true, stream, controller, first };
    }
    const hasByte = await waitFirstByte(stream.body, controller.signal);
    if (!hasByte && expectedBytes > 0) throw new EmptyBodyError();
    return { ok: true, stream, controller, first: undefined };
  } catch (error) {
    const reason: FallbackReason = controller.signal.reason instanceof FirstByteTimeoutError ? 'first_byte_timeout' : 'swarm_error';
    controller.abort(error);
    if (stream !== undefined) release(stream);
    // A provider that ignores its signal may still resolve: do not leak that body.
    else opening?.then(release, () => {});
    return { ok: false, reason, error };
  } finally {
    clearInterval(timer);
  }
}

/** How often the no-progress timers look at the clock. Milliseconds. */
const PROGRESS_CHECK_MS = 1_000;

/**
 * Restarts the client socket's idle timer while the proxy, not the client, is
 * the one waiting (for the swarm's first byte, or its next piece) and the
 * swarm shows progress: that wait is bounded by progress, and a blob queued at
 * the supernode behind its registry's other fetches, or a piece behind the
 * node's other blobs, can take minutes on a slow link. With the timer running,
 * containerd's requests were cut after 120 s and it fetched those blobs from
 * the registry, or resumed them with Range. A client that stops reading still
 * meets the timer: the sender stops reading once its writes back up.
 */
function rearmIdleTimer(exchange: BlobExchange): void {
  const socket = exchange.request.raw.socket;
  socket.setTimeout(socket.timeout ?? 0);
}

/**
 * Time since the swarm last made progress on `digest`: since the later of
 * `touch()` (bytes sent to the client) and the provider's own progress on the
 * blob (any byte of it reaching the node). Without progressAt (a provider over
 * HTTP), only the first counts.
 */
function progressClock(ctx: ProxyContext, digest: Digest): { idleMs: () => number; touch: () => void } {
  let lastMs = Date.now();
  return {
    idleMs: () => Date.now() - Math.max(lastMs, ctx.blobs.progressAt?.(digest) ?? 0),
    touch: () => {
      lastMs = Date.now();
    },
  };
}

interface FirstChunk {
  buffer: Buffer;
  length: number;
}

/** The reader's first bytes, within the signal; an empty read is a failure (bytes were expected). */
async function readFirstChunk(reader: ChunkReader, expectedBytes: number, signal: AbortSignal): Promise<FirstChunk> {
  const buffer = sendBuffers.take();
  // On abort the read may still be filling `buffer`: it is then dropped, not given back.
  const length = await abortable(reader.read(buffer.subarray(0, Math.min(buffer.length, expectedBytes))), signal);
  if (length === 0) {
    sendBuffers.give(buffer);
    throw new EmptyBodyError();
  }
  return { buffer, length };
}

function release(stream: BlobStream): void {
  if (stream.reader !== undefined) stream.reader.close();
  else destroyQuietly(stream.body);
}

/** The registry directly, as containerd would have fetched it without us. */
async function serveFromRegistry(exchange: BlobExchange): Promise<FastifyReply> {
  const { ctx, request, reply, target, range, sizeBytes, clientSignal } = exchange;
  const response = await ctx.upstream.registry.getBlob({
    ...target,
    authorization: exchange.authorization,
    range: range === undefined ? undefined : `bytes=${range.start}-${range.end}`,
    signal: clientSignal,
  });
  const stages: Transform[] = [];
  if (response.statusCode === 200 && range === undefined) {
    // A whole blob is checked against its digest, and its last chunk held back
    // until the check passes: a wrong blob never reaches containerd complete.
    stages.push(new DigestVerifier(target.digest, sizeBytes), new HoldLastChunk());
  } else if (response.statusCode === 200 && range !== undefined) {
    // The registry ignored Range: cut the requested bytes out of the whole blob.
    stages.push(new SliceBytes(range.start, range.end));
  } else if (response.statusCode === 206 && range !== undefined) {
    const contentRange = response.headers['content-range'];
    if (contentRange !== undefined && !contentRange.startsWith(`bytes ${range.start}-${range.end}/`)) {
      discard(response);
      return sendOciError(reply, 502, 'UNKNOWN', `the registry answered ${contentRange} for bytes ${range.start}-${range.end}`);
    }
  } else {
    discard(response);
    const answer = refusalAnswer('blob', response.statusCode === 206 ? 502 : response.statusCode, `${target.repository}@${target.digest}`);
    request.log.warn({ ...target, upstreamStatus: response.statusCode }, 'registry refused a blob it had just announced');
    return sendOciError(reply, answer.statusCode, answer.code, answer.message, pickHeaders(response.headers, ['www-authenticate']));
  }
  return streamBody(exchange, 'upstream', response.body, stages, (err) => {
    request.log.warn({ err, ...target, source: 'upstream' }, 'registry body failed; connection cut so the client resumes with Range');
  });
}

/**
 * Sends `body` (through `stages`) as a ChunkReader: the same sender, length
 * check, idle timeout and cut-on-failure as the local peer's bytes.
 */
function streamBody(
  exchange: BlobExchange,
  source: BlobSource,
  body: Readable,
  stages: Transform[],
  onFailure: (err: Error) => void,
): FastifyReply {
  // A failure of any stage reaches the last one, and so the reader.
  if (stages.length > 0) pipeline([body, ...stages], () => {});
  return sendFromReader(exchange, source, readerOfStream(stages.at(-1) ?? body), undefined, onFailure);
}

/**
 * Sends a ChunkReader's bytes (the local peer's) with reused buffers; the
 * same length check and cut-on-failure as streamBody. A read is cut only when
 * the swarm makes no progress on the blob for the body idle timeout: a reader
 * waiting for its next piece while other pieces land is not idle.
 */
function sendFromReader(exchange: BlobExchange, source: BlobSource, reader: ChunkReader, first: FirstChunk | undefined, onFailure: (err: Error) => void): FastifyReply {
  const { ctx, reply, target } = exchange;
  const answer = answerOf(exchange, source);
  const idleLimitMs = ctx.config.bodyIdleTimeoutMs;
  const progress = progressClock(ctx, target.digest);
  let bytes = first?.length ?? 0;
  let failRead: ((err: Error) => void) | undefined;
  const watchdog = setInterval(() => {
    if (failRead === undefined) return;
    if (progress.idleMs() >= idleLimitMs) failRead(new ReaderIdleTimeoutError(idleLimitMs));
    else rearmIdleTimer(exchange);
  }, Math.min(idleLimitMs, PROGRESS_CHECK_MS));
  watchdog.unref();
  const counted: ChunkReader = {
    read: async (into) => {
      progress.touch();
      // On a cut the inner read may still fill `into`: the sender then drops that buffer (see sendChunks).
      const count = await new Promise<number>((resolve, reject) => {
        failRead = reject;
        reader.read(into).then(resolve, reject);
      }).finally(() => {
        failRead = undefined;
      });
      bytes += count;
      return count;
    },
    close: () => {
      clearInterval(watchdog);
      reader.close();
    },
  };
  logWhenDone(exchange, source, answer.statusCode, () => bytes);
  return replyWithReader(reply, counted, {
    statusCode: answer.statusCode,
    headers: answer.headers,
    bytes: answer.bytes,
    first,
    onFailure,
  });
}

/** Status, headers and body length of a successful blob answer. */
function answerOf(exchange: BlobExchange, source: BlobSource): { statusCode: number; headers: Record<string, string>; bytes: number } {
  const { target, range, sizeBytes } = exchange;
  const bytes = range === undefined ? sizeBytes : range.end - range.start + 1;
  const headers: Record<string, string> = { ...blobHeaders(target.digest), 'content-length': String(bytes), [HEADER.source]: source };
  if (range !== undefined) headers['content-range'] = `bytes ${range.start}-${range.end}/${sizeBytes}`;
  return { statusCode: range === undefined ? 200 : 206, headers, bytes };
}

/** One log line and the byte counter per blob answer, when its connection is done with it. */
function logWhenDone(exchange: BlobExchange, source: BlobSource, statusCode: number, bytes: () => number): void {
  const { request, reply, target, startedAt } = exchange;
  reply.raw.once('close', () => {
    request.server.proxyMetrics.blobBytes.inc({ source }, bytes());
    if (reply.raw.writableFinished) request.server.proxyMetrics.blobDuration.observe({ source }, (performance.now() - startedAt) / 1000);
    request.log.info(
      {
        digest: target.digest,
        repository: target.repository,
        registry: target.registry,
        bytes: bytes(),
        source,
        durationMs: Math.round(performance.now() - startedAt),
        status: statusCode,
        complete: reply.raw.writableFinished,
      },
      'blob served',
    );
  });
}

/** Headers of every successful blob answer. */
function blobHeaders(digest: Digest): Record<string, string> {
  return {
    'docker-content-digest': digest,
    'content-type': 'application/octet-stream',
    'accept-ranges': 'bytes',
    etag: `"${digest}"`,
    [API_VERSION_HEADER]: API_VERSION,
  };
}

/** The client left: nothing to answer. */
function abandon(reply: FastifyReply): FastifyReply {
  reply.hijack();
  reply.raw.destroy();
  return reply;
}
