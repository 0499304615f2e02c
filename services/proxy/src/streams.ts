import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { SizeMismatchError } from '@shoal/core';
import { EmptyBodyError } from './errors.js';

/**
 * Counts bytes and fails the stream when it carries more or fewer than
 * `expected`, so a short body errors instead of ending cleanly (a clean end
 * with fewer bytes than Content-Length would leave the client waiting).
 */
export class ExactLength extends Transform {
  readonly expected: number;
  bytes = 0;

  constructor(expected: number) {
    super();
    this.expected = expected;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.expected) {
      done(new SizeMismatchError(`body is longer than the expected ${this.expected} bytes`));
      return;
    }
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (this.bytes !== this.expected) {
      done(new SizeMismatchError(`body ended after ${this.bytes} of ${this.expected} bytes`));
      return;
    }
    done();
  }
}

/**
 * Holds back the most recent chunk until the stream ends. Placed after a
 * DigestVerifier (which fails only at its end), it makes sure the last bytes of
 * a blob leave only once the whole blob is verified: a wrong blob reaches the
 * client truncated, never complete.
 */
export class HoldLastChunk extends Transform {
  private held: Buffer | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const previous = this.held;
    this.held = chunk;
    done(null, previous);
  }

  override _flush(done: TransformCallback): void {
    const last = this.held;
    this.held = undefined;
    done(null, last);
  }
}

/** Passes on only bytes [start, end] (inclusive) of what flows through it. */
export class SliceBytes extends Transform {
  private offset = 0;
  private readonly first: number;
  private readonly last: number;

  constructor(first: number, last: number) {
    super();
    this.first = first;
    this.last = last;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const chunkStart = this.offset;
    this.offset += chunk.length;
    const from = Math.max(this.first - chunkStart, 0);
    const to = Math.min(this.last + 1 - chunkStart, chunk.length);
    done(null, to > from ? chunk.subarray(from, to) : undefined);
  }
}

/**
 * Copies up to `maxBytes` of what flows through it; `onEnd` gets the bytes when
 * the stream ended cleanly and stayed within the limit (used to fill the
 * manifest cache while a manifest streams to the client).
 */
export class CaptureUpTo extends Transform {
  private chunks: Buffer[] | undefined = [];
  private bytes = 0;
  private readonly maxBytes: number;
  private readonly onEnd: (data: Buffer) => void;

  constructor(maxBytes: number, onEnd: (data: Buffer) => void) {
    super();
    this.maxBytes = maxBytes;
    this.onEnd = onEnd;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.chunks !== undefined) {
      this.bytes += chunk.length;
      if (this.bytes > this.maxBytes) this.chunks = undefined;
      else this.chunks.push(chunk);
    }
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (this.chunks !== undefined) this.onEnd(Buffer.concat(this.chunks));
    done();
  }
}

/**
 * Waits for the first chunk of `body` without losing it: the chunk is put back
 * with `unshift`, so the stream can then be piped from its beginning. Resolves
 * false when the body ended without a byte; rejects on error, premature close
 * or abort.
 */
export function waitFirstByte(body: Readable, signal: AbortSignal): Promise<boolean> {
  return new Promise<boolean>((resolve, reject) => {
    const cleanup = (): void => {
      body.off('readable', onReadable);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
      signal.removeEventListener('abort', onAbort);
    };
    const onReadable = (): void => {
      const chunk: unknown = body.read();
      if (chunk === null) return;
      cleanup();
      body.unshift(chunk);
      resolve(true);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(false);
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      cleanup();
      reject(new EmptyBodyError());
    };
    const onAbort = (): void => {
      cleanup();
      reject(signal.reason);
    };
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    if (body.readableEnded) {
      resolve(false);
      return;
    }
    if (body.destroyed) {
      reject(body.errored ?? new EmptyBodyError());
      return;
    }
    body.on('readable', onReadable);
    body.once('end', onEnd);
    body.once('error', onError);
    body.once('close', onClose);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
