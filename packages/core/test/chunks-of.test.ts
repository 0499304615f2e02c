import { PassThrough, Readable } from 'node:stream';
import test from 'ava';
import { chunksOf } from '../src/index.js';

test('chunks come one at a time, as they were written: none is joined to the next (no copy)', async (t) => {
  const source = new PassThrough();
  const written = [Buffer.alloc(1000, 1), Buffer.alloc(2000, 2), Buffer.alloc(3000, 3)];
  // All three wait in the stream before anything reads: `for await` would get them as one 6000-byte buffer.
  for (const chunk of written) source.write(chunk);
  source.end();
  const got: Buffer[] = [];
  for await (const chunk of chunksOf(source)) got.push(chunk);
  t.deepEqual(got.map((c) => c.length), [1000, 2000, 3000]);
  t.true(got.every((c, i) => c.buffer === (written[i] as Buffer).buffer), 'each chunk is the very buffer that was written');
});

test('a consumer that falls behind pauses the source once the queue is full', async (t) => {
  const source = new PassThrough({ highWaterMark: 1024 });
  const chunks = chunksOf(source, 4096);
  const first = chunks.next();
  for (let i = 0; i < 8; i++) source.write(Buffer.alloc(1024, i));
  t.is((await first).value?.length, 1024);
  // The consumer takes nothing more: the queue fills to 4 KiB and the source is paused,
  // so further bytes wait in the source (its own backpressure), not in the queue.
  await new Promise((resolve) => setImmediate(resolve));
  t.true(source.isPaused());
  const accepted = source.write(Buffer.alloc(64 * 1024));
  t.false(accepted, 'the writer is told to wait');
  source.end();
  let bytes = 1024;
  for await (const chunk of { [Symbol.asyncIterator]: () => chunks }) bytes += chunk.length;
  t.is(bytes, 8 * 1024 + 64 * 1024);
});

test("a source's error comes after the chunks before it", async (t) => {
  const source = new PassThrough();
  source.write(Buffer.from('abc'));
  const got: string[] = [];
  const run = (async () => {
    for await (const chunk of chunksOf(source)) {
      got.push(chunk.toString());
      source.destroy(new Error('the parent went away'));
    }
  })();
  await t.throwsAsync(run, { message: 'the parent went away' });
  t.deepEqual(got, ['abc']);
});

test('a source closed before its end is an error, not an end', async (t) => {
  const source = new Readable({ read() {} });
  source.push(Buffer.from('part'));
  const run = (async () => {
    let bytes = 0;
    for await (const chunk of chunksOf(source)) {
      bytes += chunk.length;
      source.destroy();
    }
    return bytes;
  })();
  await t.throwsAsync(run, { code: 'ERR_STREAM_PREMATURE_CLOSE' });
});

test('a consumer that stops early destroys the source', async (t) => {
  const source = new PassThrough();
  source.write(Buffer.from('one'));
  source.write(Buffer.from('two'));
  for await (const chunk of chunksOf(source)) {
    t.is(chunk.toString(), 'one');
    break;
  }
  t.true(source.destroyed);
});
