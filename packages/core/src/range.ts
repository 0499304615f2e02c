import { RangeInvalidError } from './errors.js';

/** Inclusive byte range, as HTTP writes it. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parses a `Range` header against a known size. Returns undefined when the whole
 * body should be sent (no header, or a form we answer with 200 as RFC 9110
 * allows). Several ranges are merged into one covering range (containerd and
 * stargz accept a single 206 for a multi-range request). Throws
 * RangeInvalidError (416) when nothing in it is satisfiable.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(.+)$/.exec(header.trim());
  if (m === null || m[1] === undefined || header.length > 1000) return undefined;
  let start = Infinity;
  let end = -1;
  for (const part of m[1].split(',')) {
    const r = /^\s*(\d*)-(\d*)\s*$/.exec(part);
    if (r === null) return undefined;
    const [, a = '', b = ''] = r;
    let s: number;
    let e: number;
    if (a === '' && b === '') return undefined;
    if (a === '') {
      const suffix = Number(b);
      if (suffix === 0) continue;
      s = Math.max(0, size - suffix);
      e = size - 1;
    } else {
      s = Number(a);
      e = b === '' ? size - 1 : Math.min(Number(b), size - 1);
      if (b !== '' && Number(b) < s) return undefined;
    }
    if (s >= size) continue;
    start = Math.min(start, s);
    end = Math.max(end, e);
  }
  if (end < 0 || start > end) throw new RangeInvalidError(`range ${header} not satisfiable for ${size} bytes`);
  return { start, end };
}
