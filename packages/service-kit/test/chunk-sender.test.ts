import { createHash, randomBytes } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { SizeMismatchError, type ChunkReader } from '@shoal/core';
import { BufferPool, ReaderIdleTimeoutError, ResponseClosedError, sendChunks } from '../src/index.js';

const MiB = 1024 * 1024;

/** A pool that counts the buffers it had to allocate. */
class CountingPool extends BufferPool {
  allocated = 0;
  override take(): Buffer {
    const idleBefore = this.idleCount;
    const buffer = super.take();
    if (idleBefore === 0) this.allocated++;
    return buffer;
  }
}

/** Reads `data` into the caller's buffers; `endAfter` cuts it short, `stallAt` never answers from there. */
function readerOf(data: Buffer, options: { endAfter?: number; stallAt?: number } = {}): ChunkReader & { closed: boolean } {
  let position = 0;
  const end = Math.min(data.length, options.endAfter ?? data.length);
  const reader = {
    closed: false,
    read: async (into: Buffer): Promise<number> => {
      if (options.stallAt !== undefined && position >= options.stallAt) return new Promise<number>(() => undefined);
      const count = data.copy(into, 0, position, Math.min(end, position + into.length));
      position += count;
      return count;
    },
    close: () => {
      reader.closed = true;
    },
  };
  return reader;
}

/** A server whose one route sends `reader` with sendChunks; the outcome of the send is kept. */
async function serve(t: ExecutionContext, bytes: number, reader: ChunkReader, options: { pool?: BufferPool; idleMs?: number } = {}) {
  let outcome: Promise<unknown> | undefined;
  const server: Server = createServer((_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-length': bytes });
    outcome = sendChunks(res, reader, { bytes, ...options }).then(
      () => 'sent',
      (err: unknown) => {
        res.destroy();
        return err;
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  return { port, outcome: async () => outcome };
}

/** Reads the response, slowly when `pauseMs` is set; resolves the bytes' sha256, their count and whether it ended cleanly. */
function fetch(port: number, options: { pauseMs?: number; leaveAfter?: number } = {}): Promise<{ sha256: string; bytes: number; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    const req = request({ port, host: '127.0.0.1', path: '/' }, (res) => {
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.length;
        if (options.leaveAfter !== undefined && bytes >= options.leaveAfter) {
          req.destroy();
          resolve({ sha256: '', bytes, complete: false });
        } else if (options.pauseMs !== undefined) {
          res.pause();
          setTimeout(() => res.resume(), options.pauseMs);
        }
      });
      res.on('end', () => resolve({ sha256: hash.digest('hex'), bytes, complete: res.complete }));
      res.on('error', () => resolve({ sha256: '', bytes, complete: false }));
      res.on('aborted', () => resolve({ sha256: '', bytes, complete: false }));
    });
    req.on('error', (err) => (bytes > 0 ? resolve({ sha256: '', bytes, complete: false }) : reject(err)));
    req.end();
  });
}

test('a slow client gets every byte right: a buffer is filled again only after the socket is done with it', async (t) => {
  const data = randomBytes(24 * MiB);
  const pool = new CountingPool(64 * 1024, 64);
  const reader = readerOf(data);
  const { port, outcome } = await serve(t, data.length, reader, { pool });
  const got = await fetch(port, { pauseMs: 1 });
  t.is(await outcome(), 'sent');
  t.true(got.complete);
  t.is(got.bytes, data.length);
  t.is(got.sha256, createHash('sha256').update(data).digest('hex'));
  t.true(reader.closed);
  // 384 chunks went out through a handful of buffers.
  t.true(pool.allocated <= 9, `allocated ${pool.allocated} buffers`);
});

test('a reader that ends early fails the send and the client never sees a clean end', async (t) => {
  const data = randomBytes(4 * MiB);
  const reader = readerOf(data, { endAfter: 3 * MiB + 5 });
  const { port, outcome } = await serve(t, data.length, reader);
  const got = await fetch(port);
  t.false(got.complete);
  const err = await outcome();
  t.true(err instanceof SizeMismatchError, String(err));
  t.true(reader.closed);
});

test('a reader that stops answering fails the send after the idle timeout', async (t) => {
  const data = randomBytes(2 * MiB);
  const reader = readerOf(data, { stallAt: MiB });
  const started = performance.now();
  const { port, outcome } = await serve(t, data.length, reader, { idleMs: 300 });
  const got = await fetch(port);
  t.false(got.complete);
  t.true(got.bytes <= MiB);
  const err = await outcome();
  t.true(err instanceof ReaderIdleTimeoutError, String(err));
  t.true(performance.now() - started < 3_000);
  t.true(reader.closed);
});

test('a client that leaves mid-body ends the send and closes the reader', async (t) => {
  const data = randomBytes(64 * MiB);
  const reader = readerOf(data);
  const { port, outcome } = await serve(t, data.length, reader);
  const got = await fetch(port, { leaveAfter: MiB });
  t.false(got.complete);
  const err = await outcome();
  t.true(err instanceof ResponseClosedError, String(err));
  await sleep(10);
  t.true(reader.closed);
});
