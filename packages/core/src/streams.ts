import { finished, type Readable } from 'node:stream';

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

/** Bytes `chunksOf` lets wait for its consumer before it pauses the source. */
export const CHUNK_QUEUE_BYTES = 256 * 1024;

/**
 * A byte stream's chunks one at a time, as they arrived, with backpressure:
 * the source is paused while `maxQueuedBytes` wait for the consumer. Unlike
 * `for await` over the stream, which takes whatever is buffered in one read
 * and so concatenates every chunk that waited (a copy of those bytes; on a node
 * agent filling pieces, a sixth of its main thread), no byte is copied.
 *
 * Ends when the source ends; throws its error, or ERR_STREAM_PREMATURE_CLOSE
 * when it closes early, once the chunks before it were taken. A consumer that
 * stops early (break, throw) destroys the source, as `for await` does.
 */
export async function* chunksOf(source: Readable, maxQueuedBytes = CHUNK_QUEUE_BYTES): AsyncGenerator<Buffer, void, undefined> {
  const queue: Buffer[] = [];
  let queued = 0;
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const waiting = wake;
    wake = undefined;
    waiting?.();
  };
  const onData = (chunk: Buffer | string): void => {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    queue.push(buffer);
    queued += buffer.length;
    if (queued >= maxQueuedBytes) source.pause();
    notify();
  };
  source.on('data', onData);
  const stopWatching = finished(source, (err) => {
    ended = true;
    failure = err ?? undefined;
    notify();
  });
  source.resume();
  try {
    for (;;) {
      const chunk = queue.shift();
      if (chunk !== undefined) {
        queued -= chunk.length;
        if (!ended && queued < maxQueuedBytes && source.isPaused()) source.resume();
        yield chunk;
        continue;
      }
      if (ended) {
        if (failure !== undefined) throw failure;
        return;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    source.off('data', onData);
    stopWatching();
    if (!ended) destroyQuietly(source);
  }
}
