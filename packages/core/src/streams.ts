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

/**
 * Reads a small answer whole (JSON, a manifest, a token; never blob bytes),
 * refusing one larger than `maxBytes` with the caller's error, so a broken or
 * hostile server cannot make us buffer without bound.
 */
export async function readBounded(body: Readable, maxBytes: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    total += buf.length;
    if (total > maxBytes) {
      destroyQuietly(body);
      throw tooLarge();
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks, total);
}
