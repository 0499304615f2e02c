import { Transform, type TransformCallback } from 'node:stream';
import { delay } from '@shoal/core';

/**
 * A token bucket shared by every stream it throttles, so a node-wide limit
 * holds however many transfers run at once. Burst: 100 ms worth of bytes, at
 * least 64 KiB, so small chunks are not delayed one by one.
 */
export class RateLimiter {
  readonly bytesPerSec: number;
  private readonly burst: number;
  private tokens: number;
  private last = performance.now();

  constructor(bytesPerSec: number) {
    this.bytesPerSec = bytesPerSec;
    this.burst = Math.max(64 * 1024, bytesPerSec / 10);
    this.tokens = this.burst;
  }

  /** Waits until `bytes` may pass. */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = performance.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.bytesPerSec);
      this.last = now;
      if (this.tokens >= Math.min(bytes, this.burst)) {
        this.tokens -= bytes; // may go negative: a large chunk borrows from the future
        return;
      }
      const waitMs = Math.ceil(((Math.min(bytes, this.burst) - this.tokens) / this.bytesPerSec) * 1000);
      await delay(Math.max(1, waitMs), signal);
    }
  }

  /** A pass-through stream that holds each chunk until the bucket lets it go. */
  throttle(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) => {
        this.take(chunk.length).then(() => done(null, chunk), done);
      },
    });
  }
}
