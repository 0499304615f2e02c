import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ExecutionContext } from 'ava';
import { digestOf, pieceLayout, pieceSpan, sha256Hex, silentLogger, type ChunkReader, type Clock, type Digest, type Logger, type PieceLayout } from '@shoal/core';
import { PieceStore, type PieceStoreInit } from '../src/index.js';

export const MiB = 1024 * 1024;

export interface Blob {
  data: Buffer;
  digest: Digest;
  layout: PieceLayout;
  pieceSha256: string[];
}

/** Random bytes of `sizeBytes` with their digest and real piece hashes. */
export function makeBlob(sizeBytes: number): Blob {
  const data = randomBytes(sizeBytes);
  const layout = pieceLayout(sizeBytes);
  const pieceSha256 = Array.from({ length: layout.pieceCount }, (_, i) => sha256Hex(piece({ data, layout }, i)));
  return { data, digest: digestOf(data), layout, pieceSha256 };
}

export function piece(blob: { data: Buffer; layout: PieceLayout }, index: number): Buffer {
  const { offset, length } = pieceSpan(blob.layout, index);
  return blob.data.subarray(offset, offset + length);
}

/** A stream of `data` in chunks, as a socket would deliver it. */
export function streamOf(data: Buffer, chunkBytes = 64 * 1024): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0; at < data.length; at += chunkBytes) yield data.subarray(at, at + chunkBytes);
    })(),
  );
}

export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A fresh directory under the OS temp dir, removed in teardown. */
export async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-store-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Opens a store in a fresh directory; closes it in teardown (close is idempotent). */
export async function openStore(t: ExecutionContext, dir?: string): Promise<{ store: PieceStore; dir: string }> {
  const where = dir ?? (await tempDir(t));
  const store = await PieceStore.open({ log: silentLogger() }, { dir: where });
  t.teardown(() => store.close());
  return { store, dir: where };
}

/** A clock the test moves by hand. */
export function manualClock(startMs = 1_000_000): Clock & { set(ms: number): void; advance(ms: number): void } {
  let nowMs = startMs;
  return {
    now: () => nowMs,
    set: (ms) => (nowMs = ms),
    advance: (ms) => (nowMs += ms),
  };
}

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  msg: string | undefined;
  fields: Record<string, unknown>;
}

/** A silent logger whose child loggers record their info/warn/error lines. */
export function recordingLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = silentLogger();
  const makeChild = log.child.bind(log);
  const record = (level: LogLine['level']) => (fields: unknown, msg?: string) => {
    lines.push({ level, msg, fields: typeof fields === 'object' && fields !== null ? (fields as Record<string, unknown>) : { value: fields } });
  };
  Object.assign(log, {
    child: (bindings: Record<string, unknown>) =>
      Object.assign(makeChild(bindings), { info: record('info'), warn: record('warn'), error: record('error') }),
  });
  return { log, lines };
}

/** Opens a store with `init` (dir defaults to a fresh one); closes it in teardown. */
export async function openStoreWith(
  t: ExecutionContext,
  init: Partial<PieceStoreInit>,
  components: { clock?: Clock; log?: Logger } = {},
): Promise<{ store: PieceStore; dir: string }> {
  const dir = init.dir ?? (await tempDir(t));
  const store = await PieceStore.open({ log: components.log ?? silentLogger(), clock: components.clock }, { ...init, dir });
  t.teardown(() => store.close());
  return { store, dir };
}

export function blobFile(dir: string, digest: Digest): string {
  return join(dir, 'blobs', 'sha256', digest.slice(7));
}

export function partialFile(dir: string, digest: Digest): string {
  return join(dir, 'partial', 'sha256', digest.slice(7));
}

export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Fisher–Yates on a copy. */
export function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** Reads `reader` to its end into one buffer, `chunkBytes` at a time, and closes it. */
/** Reads `reader` to its end, `chunkBytes` at a time, pushing each chunk onto `got` (which keeps what came before a failure). */
export async function readChunksInto(reader: ChunkReader, got: Buffer[], chunkBytes = 256 * 1024): Promise<void> {
  for (;;) {
    const into = Buffer.alloc(chunkBytes);
    const count = await reader.read(into);
    if (count === 0) return;
    got.push(into.subarray(0, count));
  }
}

export async function readAll(reader: ChunkReader, chunkBytes = 64 * 1024): Promise<Buffer> {
  const parts: Buffer[] = [];
  try {
    for (;;) {
      const into = Buffer.allocUnsafe(chunkBytes);
      const count = await reader.read(into);
      if (count === 0) return Buffer.concat(parts);
      parts.push(into.subarray(0, count));
    }
  } finally {
    reader.close();
  }
}
