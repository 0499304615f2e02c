import type { FileHandle } from 'node:fs/promises';
import { noop } from './entry.js';

/**
 * Disk I/O happens in chunks of this size at least (or a piece's end). Network
 * bodies arrive in 16–64 KiB chunks, and one syscall per chunk costs several
 * times the copy itself (measured here: 256 MiB in 64 KiB writes 381 ms, in
 * 1 MiB writes 55 ms). Bounds memory to two chunks per piece being written
 * (one filling while the other is written).
 */
export const IO_CHUNK_BYTES = 1024 * 1024;

/**
 * Writes a run of bytes at increasing positions of a file in IO_CHUNK_BYTES
 * writes (one syscall per MiB instead of one per network chunk), with one
 * write in flight while the next fills. Bounded: at most two chunks held.
 */
export class PositionalWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private inflight: Promise<void> | undefined;

  constructor(
    private readonly fh: FileHandle,
    private position: number,
  ) {}

  async push(chunk: Buffer): Promise<void> {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= IO_CHUNK_BYTES) await this.startWrite();
  }

  /** Writes what is pending and waits until every byte is written. */
  async flush(): Promise<void> {
    if (this.pendingBytes > 0) await this.startWrite();
    const last = this.inflight;
    this.inflight = undefined;
    await last;
  }

  /** Waits for a write still in flight, ignoring its failure (cleanup after an error). */
  async settle(): Promise<void> {
    await this.inflight?.catch(noop);
  }

  private async startWrite(): Promise<void> {
    await this.inflight;
    // Gathered with writev, not concatenated: a copy into a fresh 1 MiB
    // buffer cost more main-thread time (page faults, GC) than the write.
    const chunks = this.pending;
    const at = this.position;
    this.position += this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    const write = writeFully(this.fh, chunks, at);
    // Handled here so a failure is not reported as unhandled before it is awaited.
    write.catch(noop);
    this.inflight = write;
  }
}

/**
 * Writes a piece held whole in memory at `position`, in writes of at most
 * IO_CHUNK_BYTES. Pieces of 2 MiB (blobs over 256 MiB have them) written in one
 * `pwrite` each cost the supernode 6.7–6.9 CPU-s per GiB against 3.9 in 1 MiB
 * writes on the test machine (docs/benchmarks.md, "1 MiB writes").
 */
export async function writePiece(fh: FileHandle, bytes: Buffer, position: number): Promise<void> {
  for (let offset = 0; offset < bytes.length; offset += IO_CHUNK_BYTES) {
    await writeFully(fh, [bytes.subarray(offset, Math.min(bytes.length, offset + IO_CHUNK_BYTES))], position + offset);
  }
}

/** Writes `chunks` at `position`, again after a short write, until every byte is written. */
export async function writeFully(fh: FileHandle, chunks: Buffer[], position: number): Promise<void> {
  let rest = chunks;
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest, position);
    position += bytesWritten;
    rest = dropBytes(rest, bytesWritten);
  }
}

/** What is left of `chunks` after its first `count` bytes (after a short write). */
function dropBytes(chunks: Buffer[], count: number): Buffer[] {
  let skip = count;
  let index = 0;
  while (index < chunks.length && skip >= (chunks[index] as Buffer).length) skip -= (chunks[index++] as Buffer).length;
  const rest = chunks.slice(index);
  if (skip > 0 && rest.length > 0) rest[0] = (rest[0] as Buffer).subarray(skip);
  return rest;
}
