import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { SizeMismatchError, type ChunkReader } from '@shoal/core';
import { ReaderIdleTimeoutError, ResponseClosedError } from './errors.js';

/** Bytes per buffer: small enough to stay in cache, large enough for few syscalls. */
export const SEND_CHUNK_BYTES = 256 * 1024;
/** Buffers one response may have handed to its socket and not got back. */
const MAX_IN_FLIGHT_PER_RESPONSE = 8;
/** Idle buffers the pool keeps for reuse (8 MiB, the in-flight buffers of 4 responses); more are left to the GC. */
const MAX_POOLED = 32;

/**
 * Send buffers, reused. A buffer comes back only from a socket write's
 * callback, when the kernel has the bytes; one whose fate is unknown (a read
 * abandoned on timeout, a response torn down with the write pending) is never
 * given back, so a buffer in use is never filled again.
 */
export class BufferPool {
  private readonly idle: Buffer[] = [];

  constructor(
    readonly bufferBytes = SEND_CHUNK_BYTES,
    private readonly maxIdle = MAX_POOLED,
  ) {}

  take(): Buffer {
    return this.idle.pop() ?? Buffer.allocUnsafeSlow(this.bufferBytes);
  }

  give(buffer: Buffer): void {
    if (buffer.length === this.bufferBytes && this.idle.length < this.maxIdle) this.idle.push(buffer);
  }

  get idleCount(): number {
    return this.idle.length;
  }
}

/** The one pool of a process: every response draws from it. */
export const sendBuffers = new BufferPool();

export interface SendChunksOptions {
  /** The body is exactly this many bytes; a reader that ends sooner fails the send. */
  bytes: number;
  /** Bytes already read from the reader, in a buffer taken from `pool` (sent first, then given back). */
  first?: FirstChunk | undefined;
  /** The reader may take this long for one read; longer fails the send. */
  idleMs?: number | undefined;
  /** Awaited before each chunk is written (a rate limit). */
  beforeWrite?: ((bytes: number) => Promise<void>) | undefined;
  /**
   * Asked once the reader has ended: HTTP trailers sent after the body (a hash
   * known only then). The response must be chunked (no content-length) and
   * announce them in a `trailer` header.
   */
  trailers?: (() => Record<string, string>) | undefined;
  pool?: BufferPool | undefined;
}

/**
 * Sends `reader`'s bytes as the body of `response` (headers already set) and
 * ends it. Reads ahead while earlier chunks are still being written, with at
 * most a few buffers per response. Resolves once the body is handed to the
 * socket; rejects on a reader failure, a short reader, an idle reader or a
 * closed response, and then the caller must destroy the response (a clean end
 * would pass a truncated body for a whole one). Closes the reader either way.
 */
export async function sendChunks(response: ServerResponse, reader: ChunkReader, options: SendChunksOptions): Promise<void> {
  const pool = options.pool ?? sendBuffers;
  let inFlight = 0;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  /** Set while a read is outstanding: rejects it (its buffer is then dropped, see BufferPool). */
  let abandonRead: ((err: Error) => void) | undefined;
  let readStartedAt = 0;
  const resume = (): void => {
    const waiting = wake;
    wake = undefined;
    waiting?.();
  };
  const fail = (err: Error): void => {
    failure ??= err;
    abandonRead?.(failure);
    resume();
  };
  const onClose = (): void => {
    if (!response.writableFinished) fail(new ResponseClosedError());
    resume();
  };
  response.once('close', onClose);
  response.once('finish', resume);
  const idleMs = options.idleMs;
  const watchdog =
    idleMs === undefined
      ? undefined
      : setInterval(() => {
          if (abandonRead !== undefined && performance.now() - readStartedAt >= idleMs) fail(new ReaderIdleTimeoutError(idleMs));
        }, Math.min(idleMs, 1000));
  watchdog?.unref();

  const write = (buffer: Buffer, length: number): void => {
    inFlight++;
    response.write(buffer.subarray(0, length), (err) => {
      inFlight--;
      // Written or failed, the socket holds no reference to it any more.
      pool.give(buffer);
      if (err !== undefined && err !== null) fail(new ResponseClosedError(err));
      resume();
    });
  };
  const read = (into: Buffer): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      abandonRead = reject;
      readStartedAt = performance.now();
      reader.read(into).then(resolve, reject);
    }).finally(() => {
      abandonRead = undefined;
    });
  const until = async (done: () => boolean): Promise<void> => {
    while (!done() && failure === undefined) await new Promise<void>((resolve) => (wake = resolve));
    if (failure !== undefined) throw failure;
  };

  try {
    let sent = 0;
    if (options.first !== undefined) {
      if (options.first.length > options.bytes) throw new SizeMismatchError(`body is longer than the expected ${options.bytes} bytes`);
      if (options.beforeWrite !== undefined) await options.beforeWrite(options.first.length);
      write(options.first.buffer, options.first.length);
      sent = options.first.length;
    }
    while (sent < options.bytes) {
      await until(() => inFlight < MAX_IN_FLIGHT_PER_RESPONSE);
      const buffer = pool.take();
      const count = await read(buffer.subarray(0, Math.min(buffer.length, options.bytes - sent)));
      if (count === 0) {
        pool.give(buffer);
        throw new SizeMismatchError(`body ended after ${sent} of ${options.bytes} bytes`);
      }
      sent += count;
      if (options.beforeWrite !== undefined) await options.beforeWrite(count);
      if (failure !== undefined) throw failure;
      write(buffer, count);
    }
    // The reader must end here too: more bytes than announced is a wrong body, not a cut one.
    if ((await read(Buffer.allocUnsafe(1))) !== 0) throw new SizeMismatchError(`body is longer than the expected ${options.bytes} bytes`);
    if (options.trailers !== undefined) response.addTrailers(options.trailers());
    response.end();
    await until(() => response.writableFinished);
  } finally {
    clearInterval(watchdog);
    response.off('close', onClose);
    response.off('finish', resume);
    reader.close();
  }
}

/** A reader's first bytes, in a buffer taken from a pool, to hand to sendChunks as `first`. */
export interface FirstChunk {
  buffer: Buffer;
  length: number;
}

/**
 * Reads a reader's first bytes (at most `bytes`) before anything is answered,
 * so a reader that cannot deliver, a store piece that fails its check at rest
 * for one, is still an error status and not a cut body. An empty read is a
 * SizeMismatchError. On a failure the buffer goes back to the pool, and the
 * reader is left to the caller.
 */
export async function readFirstChunk(reader: ChunkReader, bytes: number, pool: BufferPool = sendBuffers): Promise<FirstChunk> {
  const buffer = pool.take();
  let length: number;
  try {
    length = await reader.read(buffer.subarray(0, Math.min(buffer.length, bytes)));
  } catch (err) {
    pool.give(buffer);
    throw err;
  }
  if (length === 0) {
    pool.give(buffer);
    throw new SizeMismatchError(`the body ended before its first byte (${bytes} expected)`);
  }
  return { buffer, length };
}

/**
 * A ChunkReader over a stream, for bytes that come from elsewhere (the
 * registry, a peer in another process): they then reach the socket through
 * sendChunks like the store's, and its length and idle checks are the only
 * ones. Each chunk is copied into the caller's buffer (cheaper than a fresh
 * buffer per write); a chunk larger than the buffer is handed out in parts. An
 * error, or a close before the end, rejects the read; closing the reader
 * destroys the stream.
 */
export function readerOfStream(stream: Readable): ChunkReader {
  let rest: Buffer | undefined;
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const resume = (): void => {
    const waiting = wake;
    wake = undefined;
    waiting?.();
  };
  const onEnd = (): void => {
    ended = true;
    resume();
  };
  const onError = (err: Error): void => {
    failure ??= err;
    resume();
  };
  const onClose = (): void => {
    if (!ended) failure ??= stream.errored ?? new SizeMismatchError('the body closed before its end');
    resume();
  };
  stream.on('readable', resume);
  stream.once('end', onEnd);
  stream.on('error', onError);
  stream.once('close', onClose);
  if (stream.readableEnded) ended = true;
  else if (stream.destroyed) failure = stream.errored ?? new SizeMismatchError('the body closed before its end');
  return {
    async read(into: Buffer): Promise<number> {
      for (;;) {
        if (rest === undefined) {
          const chunk: unknown = stream.read();
          if (chunk !== null) rest = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
        }
        if (rest !== undefined && rest.length > 0) {
          const count = rest.copy(into, 0, 0, Math.min(into.length, rest.length));
          rest = count === rest.length ? undefined : rest.subarray(count);
          return count;
        }
        rest = undefined;
        if (failure !== undefined) throw failure;
        if (ended) return 0;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
    close(): void {
      stream.off('readable', resume);
      stream.off('end', onEnd);
      stream.off('close', onClose);
      // Kept: a late error of the destroyed stream must not go unhandled.
      stream.on('error', () => {});
      stream.off('error', onError);
      if (!stream.destroyed) stream.destroy();
    },
  };
}

export interface ReplyWithReaderInit extends SendChunksOptions {
  statusCode?: number | undefined;
  headers: Record<string, string | number>;
  /** Told of a failure after the headers left (the connection is then cut); a client that left is not a failure. */
  onFailure?: ((err: Error) => void) | undefined;
}

/**
 * Answers a fastify request with `reader`'s bytes through sendChunks. The
 * reply is hijacked (fastify's onResponse hooks still run); headers already
 * set on it are kept. A HEAD request gets the headers only.
 */
export function replyWithReader(reply: FastifyReply, reader: ChunkReader, init: ReplyWithReaderInit): FastifyReply {
  reply.hijack();
  const raw = reply.raw;
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries({ ...reply.getHeaders(), ...init.headers })) if (value !== undefined) headers[name] = value;
  raw.writeHead(init.statusCode ?? 200, headers);
  if (reply.request.method === 'HEAD') {
    if (init.first !== undefined) (init.pool ?? sendBuffers).give(init.first.buffer);
    reader.close();
    raw.end();
    return reply;
  }
  sendChunks(raw, reader, init).catch((err: Error) => {
    if (!(err instanceof ResponseClosedError)) {
      if (init.onFailure !== undefined) init.onFailure(err);
      else reply.log.warn({ err, url: reply.request.url }, 'body failed after its headers; connection cut');
    }
    raw.destroy();
  });
  return reply;
}
