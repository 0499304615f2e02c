import type { Readable } from 'node:stream';
import { destroyQuietly } from '@shoal/core';

/**
 * Reads a small JSON answer from another Shoal process, refusing one larger
 * than `limitBytes` (metadata only, never blob bytes: it is held in memory).
 * `tooLarge` makes the error the caller's typed one.
 */
export async function readBoundedJson(body: Readable, limitBytes: number, tooLarge: () => Error): Promise<unknown> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += (chunk as Buffer).length;
    if (total > limitBytes) {
      destroyQuietly(body);
      throw tooLarge();
    }
    chunks.push(chunk as Buffer);
  }
  return JSON.parse(Buffer.concat(chunks, total).toString('utf8')) as unknown;
}
