import { request } from 'node:http';
import fc from 'fast-check';

/**
 * Spellings of one request path that a router may take for the same route, or that a
 * naive prefix check may read differently from the router: percent-encoded characters
 * (either hex case), doubled slashes, `/./` segments, changed letter case, a trailing
 * slash and a query on a prefix.
 */
export function pathSpellings(path: string): fc.Arbitrary<string> {
  const encodeSome = fc.array(fc.boolean(), { minLength: path.length, maxLength: path.length }).chain((picks) =>
    fc.boolean().map((upper) =>
      [...path]
        .map((ch, i) => {
          if (picks[i] !== true) return ch;
          const hex = ch.charCodeAt(0).toString(16).padStart(2, '0');
          return `%${upper ? hex.toUpperCase() : hex}`;
        })
        .join(''),
    ),
  );
  const segments = path.split('/');
  const atSegment = fc.nat({ max: Math.max(0, segments.length - 1) });
  const insert = (filler: string): fc.Arbitrary<string> => atSegment.map((i) => [...segments.slice(0, i + 1), filler, ...segments.slice(i + 1)].join('/').replace(/\/\/+$/, '/'));
  return fc.oneof(
    encodeSome,
    insert(''),
    insert('.'),
    atSegment.map((i) => segments.map((s, j) => (j === i ? s.toUpperCase() : s)).join('/')),
    fc.constant(`${path}/`),
    atSegment.map((i) => `${segments.slice(0, i + 1).join('/')}?x=${encodeURIComponent(segments.slice(i + 1).join('/'))}`),
    fc.constant(`${path}?`),
    fc.constant(path.replace(/\//g, '%2F')),
    fc.constant(`/.${path}`),
  );
}

/** Sends `path` exactly as written (no normalisation by a client) and resolves with the status code. */
export function rawRequestStatus(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent: false, headers: { ...headers, 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(method === 'POST' ? '{}' : undefined);
  });
}
