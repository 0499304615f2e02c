import { randomBytes } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import test from 'ava';
import { SizeMismatchError, type ChunkReader } from '@shoal/core';
import { readerOfStream, sendChunks } from '../src/index.js';

async function readAll(reader: ChunkReader, bufferBytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (;;) {
    const into = Buffer.alloc(bufferBytes);
    const count = await reader.read(into);
    if (count === 0) return Buffer.concat(parts);
    parts.push(into.subarray(0, count));
  }
}

test('a stream read through readerOfStream gives its bytes in order, in parts when chunks are larger than the buffer', async (t) => {
  const data = randomBytes(300_000);
  const chunks = [data.subarray(0, 100_000), data.subarray(100_000, 100_001), data.subarray(100_001)];
  t.true((await readAll(readerOfStream(Readable.from(chunks)), 64 * 1024)).equals(data));
  t.true((await readAll(readerOfStream(Readable.from(chunks)), 7)).equals(data));
});

test('an error or a close before the end rejects the read; closing the reader destroys the stream', async (t) => {
  const failing = new PassThrough();
  const reader = readerOfStream(failing);
  failing.write(Buffer.alloc(10));
  t.is(await reader.read(Buffer.alloc(100)), 10);
  setImmediate(() => failing.destroy(new Error('upstream broke')));
  await t.throwsAsync(reader.read(Buffer.alloc(100)), { message: 'upstream broke' });

  const cut = new PassThrough();
  const cutReader = readerOfStream(cut);
  setImmediate(() => cut.destroy());
  await t.throwsAsync(cutReader.read(Buffer.alloc(100)), { instanceOf: SizeMismatchError });

  const open = new PassThrough();
  readerOfStream(open).close();
  t.true(open.destroyed);
});

test('sendChunks fails a reader that has more bytes than announced, instead of ending cleanly', async (t) => {
  const data = randomBytes(1000);
  let outcome: Promise<unknown> | undefined;
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-length': 900 });
    outcome = sendChunks(res, readerOfStream(Readable.from([data])), { bytes: 900 }).then(
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
  const complete = await new Promise<boolean>((resolve) => {
    const req = request({ port, host: '127.0.0.1', path: '/' }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.complete));
      res.on('error', () => resolve(false));
      res.on('aborted', () => resolve(false));
    });
    req.on('error', () => resolve(false));
    req.end();
  });
  t.false(complete, 'the client sees a cut body');
  t.true((await outcome) instanceof SizeMismatchError);
});
