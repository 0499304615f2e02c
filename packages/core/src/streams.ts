import type { Readable } from 'node:stream';

/**
 * Destroys a stream we will not read to its end (an HTTP body answered with an
 * error status, a source a write refused). undici's bodies emit 'error'
 * (RequestAbortedError) when destroyed before their end, and a stream with no
 * 'error' listener turns that into an uncaught exception: the whole process
 * goes down. A no-op listener first makes destroying always safe.
 */
export function destroyQuietly(stream: Readable): void {
  stream.on('error', noop);
  stream.destroy();
}

function noop(): void {}
