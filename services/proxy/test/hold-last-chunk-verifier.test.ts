import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import test from 'ava';
import { DigestVerifier, digestOf } from '@shoal/core';
import { HoldLastChunk, SliceBytes } from '../src/streams.js';

async function run(chunks: Buffer[], digestOfWhole: ReturnType<typeof digestOf>, size: number): Promise<{ out: Buffer; error: unknown }> {
  const out: Buffer[] = [];
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => out.push(c));
  let error: unknown;
  try {
    await pipeline(Readable.from(chunks), new DigestVerifier(digestOfWhole, size), new HoldLastChunk(), sink);
  } catch (err) {
    error = err;
  }
  return { out: Buffer.concat(out), error };
}

test('DigestVerifier + HoldLastChunk: a good blob passes whole, a bad one never gets its last chunk out', async (t) => {
  const chunks = [Buffer.alloc(1000, 1), Buffer.alloc(1000, 2), Buffer.alloc(500, 3)];
  const whole = Buffer.concat(chunks);
  const good = await run(chunks, digestOf(whole), whole.length);
  t.is(good.error, undefined);
  t.true(good.out.equals(whole));

  const bad = await run(chunks, digestOf('something else'), whole.length);
  t.truthy(bad.error);
  t.true(bad.out.length < whole.length, `${bad.out.length} bytes got out`);
});

test('SliceBytes cuts an inclusive range out of a stream across chunk boundaries', async (t) => {
  const whole = Buffer.from(Array.from({ length: 300 }, (_, i) => i % 256));
  const chunks = [whole.subarray(0, 100), whole.subarray(100, 200), whole.subarray(200)];
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks), new SliceBytes(95, 205), async function* (source) {
    for await (const c of source) out.push(c as Buffer);
  });
  t.true(Buffer.concat(out).equals(whole.subarray(95, 206)));
});
