import type { Readable } from 'node:stream';
import { readBounded } from '@shoal/core';

/**
 * Reads a small JSON answer from another Shoal process, refusing one larger
 * than `limitBytes` (metadata only, never blob bytes: it is held in memory).
 * `tooLarge` makes the error the caller's typed one.
 */
export async function readBoundedJson(body: Readable, limitBytes: number, tooLarge: () => Error): Promise<unknown> {
  return JSON.parse((await readBounded(body, limitBytes, tooLarge)).toString('utf8')) as unknown;
}
