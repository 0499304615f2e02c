import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { IO_CHUNK_BYTES, PositionalWriter, writePiece } from '../src/positional-writer.js';

/** A real file handle whose writev calls are recorded, and cut short to `maxPerCall` bytes when given (as a kernel may). */
function recording(fh: FileHandle, maxPerCall?: number): { handle: FileHandle; calls: number[] } {
  const calls: number[] = [];
  const writev = async (buffers: Buffer[], position: number): Promise<{ bytesWritten: number; buffers: Buffer[] }> => {
    let bytes = buffers.reduce((n, b) => n + b.length, 0);
    calls.push(bytes);
    let parts = buffers;
    if (maxPerCall !== undefined && bytes > maxPerCall) {
      parts = [Buffer.concat(buffers).subarray(0, maxPerCall)];
      bytes = maxPerCall;
    }
    const { bytesWritten } = await fh.writev(parts, position);
    return { bytesWritten, buffers };
  };
  return { handle: new Proxy(fh, { get: (target, key) => (key === 'writev' ? writev : Reflect.get(target, key, target) as unknown) }), calls };
}

async function withFile(t: { teardown: (fn: () => Promise<void>) => void }): Promise<{ path: string; fh: FileHandle }> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-positional-'));
  const path = join(dir, 'blob');
  const fh = await open(path, 'w+');
  t.teardown(async () => {
    await fh.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  return { path, fh };
}

test('a piece larger than a chunk goes to disk in writes of at most IO_CHUNK_BYTES', async (t) => {
  const { path, fh } = await withFile(t);
  const piece = randomBytes(3 * IO_CHUNK_BYTES + 12_345);
  const { handle, calls } = recording(fh);
  await writePiece(handle, piece, 1000);
  t.deepEqual(calls, [IO_CHUNK_BYTES, IO_CHUNK_BYTES, IO_CHUNK_BYTES, 12_345]);
  t.true((await readFile(path)).subarray(1000).equals(piece));
});

test('short writes are written again until every byte is on disk', async (t) => {
  const { path, fh } = await withFile(t);
  const piece = randomBytes(2 * IO_CHUNK_BYTES + 1);
  const { handle, calls } = recording(fh, 300_000);
  await writePiece(handle, piece, 0);
  t.true(calls.length >= Math.ceil(piece.length / 300_000));
  t.true(calls.every((bytes) => bytes <= IO_CHUNK_BYTES));
  t.true((await readFile(path)).equals(piece));
});

test('the positional writer gathers network-sized chunks into writes of about IO_CHUNK_BYTES, in order', async (t) => {
  const { path, fh } = await withFile(t);
  const { handle, calls } = recording(fh);
  const writer = new PositionalWriter(handle, 4096);
  const chunkBytes = 64 * 1024 + 17;
  const chunks = Array.from({ length: 40 }, () => randomBytes(chunkBytes));
  for (const chunk of chunks) await writer.push(chunk);
  await writer.flush();
  t.is(calls.length, 3);
  t.true(calls.every((bytes) => bytes < IO_CHUNK_BYTES + chunkBytes));
  t.is(calls.reduce((n, b) => n + b, 0), 40 * chunkBytes);
  t.true((await readFile(path)).subarray(4096).equals(Buffer.concat(chunks)));
});
