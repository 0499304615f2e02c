/**
 * The floor for bench:cpu: the bytes of Shoal's cold path moved by two bare
 * Node processes, with none of Shoal's code, so that a run can say how much of
 * a Shoal process's CPU per GiB any Node process doing the same work would
 * spend on this machine at this moment, and how much is Shoal's own.
 *
 *   seed  (in the supernode's place): GETs the blob from the registry; every
 *         byte into a piece hash and the blob's hash; 1 MiB writes to a new
 *         file, fdatasync at the end; serves each piece, once it is whole, to
 *         one HTTP request per piece (its hash in a header).
 *   sink  (in the node agent's place): GETs the pieces from the seed, four at
 *         a time; hashes each and checks it; 1 MiB writes to a new file,
 *         fdatasync at the end; streams the blob in order to one client.
 *
 * What it leaves out is what Shoal adds: the scheduler and its calls, peers'
 * announcements, fastify's routing and hooks, tokens, the store's records and
 * crash safety, logs and metrics, cut-through. The piece size is Shoal's
 * (pieceLayout), and the files are written with the store's own writer.
 *
 *   node cpu-floor.js seed <registry base URL> <dir> <port>
 *   node cpu-floor.js sink <seed base URL> <dir> <port>
 *
 * Requests: the sink's `GET /blob?path=/v2/<repo>/blobs/<digest>&size=<bytes>`;
 * the seed's `GET /piece?path=…&size=…&i=<index>`; both `GET /readyz`.
 */
import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import { join } from 'node:path';
import { pieceLayout, pieceSpan, type PieceLayout } from '@shoal/core';
import { PositionalWriter } from '@shoal/store';

/** Pieces the sink fetches at once (Shoal's node keeps a window of pieces in flight too). */
const SINK_WINDOW = 4;
/** Whole pieces the seed holds for the sink before it stops reading the registry (bounds its memory). */
const SEED_HELD_PIECES = 16;
const HEADER_SHA = 'x-piece-sha256';

/** A new file written as the store writes (1 MiB writes, one in flight), made durable at the end. */
async function newFile(path: string): Promise<{ writer: PositionalWriter; finish(): Promise<void> }> {
  const fh = await open(path, 'w');
  const writer = new PositionalWriter(fh, 0);
  return {
    writer,
    async finish() {
      await writer.flush();
      await fh.datasync();
      await fh.close();
    },
  };
}

interface SeedPiece {
  chunks: Buffer[];
  sha256: string | undefined;
  waiters: Array<() => void>;
}

/** One blob the seed fetches from the registry. */
class SeedFill {
  readonly layout: PieceLayout;
  readonly pieces: SeedPiece[];
  failure: Error | undefined;
  private held = 0;
  private servedWaiter: (() => void) | undefined;

  constructor(registryUrl: string, path: string, size: number, file: string) {
    this.layout = pieceLayout(size);
    this.pieces = Array.from({ length: this.layout.pieceCount }, () => ({ chunks: [], sha256: undefined, waiters: [] }));
    this.run(registryUrl, path, file).catch((err: unknown) => {
      this.failure = err as Error;
      for (const p of this.pieces) for (const w of p.waiters.splice(0)) w();
    });
  }

  /** Resolves once piece `i` is whole (or the fill failed). */
  async whole(i: number): Promise<SeedPiece> {
    const piece = this.pieces[i];
    if (piece === undefined) throw new RangeError(`no piece ${i}`);
    while (piece.sha256 === undefined && this.failure === undefined) await new Promise<void>((r) => piece.waiters.push(r));
    if (this.failure !== undefined) throw this.failure;
    return piece;
  }

  served(piece: SeedPiece): void {
    piece.chunks = [];
    this.held--;
    this.servedWaiter?.();
  }

  private async run(registryUrl: string, path: string, file: string): Promise<void> {
    const expected = /sha256:([0-9a-f]{64})(?:\?.*)?$/.exec(path)?.[1];
    if (expected === undefined) throw new Error(`${path}: not a blob path`);
    const res = await get(`${registryUrl}${path}`);
    if (res.statusCode !== 200) throw new Error(`registry answered ${String(res.statusCode)} for ${path}`);
    const out = await newFile(file);
    const blobHash = createHash('sha256');
    let pieceHash: Hash = createHash('sha256');
    let index = 0;
    let inPiece = 0;
    for await (const data of res as AsyncIterable<Buffer>) {
      let at = 0;
      while (at < data.length) {
        const span = pieceSpan(this.layout, index);
        const part = data.subarray(at, at + Math.min(span.length - inPiece, data.length - at));
        at += part.length;
        inPiece += part.length;
        pieceHash.update(part);
        blobHash.update(part);
        (this.pieces[index] as SeedPiece).chunks.push(part);
        await out.writer.push(part);
        if (inPiece === span.length) {
          // The last piece is served only once the whole blob matched its digest.
          if (index === this.layout.pieceCount - 1) {
            const actual = blobHash.digest('hex');
            if (actual !== expected) throw new Error(`${path}: the blob hashed to ${actual}`);
          }
          const piece = this.pieces[index] as SeedPiece;
          piece.sha256 = pieceHash.digest('hex');
          for (const w of piece.waiters.splice(0)) w();
          this.held++;
          index++;
          inPiece = 0;
          pieceHash = createHash('sha256');
          while (this.held >= SEED_HELD_PIECES) await new Promise<void>((r) => (this.servedWaiter = r));
        }
      }
    }
    await out.finish();
    if (index !== this.layout.pieceCount) throw new Error(`${path}: the registry sent ${index} of ${this.layout.pieceCount} pieces`);
  }
}

const agent = new http.Agent({ keepAlive: true, maxSockets: SINK_WINDOW });

function get(url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => http.get(url, { agent }, resolve).on('error', reject));
}

/** The request's blob path and size (and piece index, if asked for); throws on anything else. */
function blobQuery(req: IncomingMessage, withIndex: boolean): { path: string; size: number; i: number } {
  const q = new URL(req.url ?? '/', 'http://floor').searchParams;
  const path = q.get('path') ?? '';
  const size = Number(q.get('size'));
  const i = withIndex ? Number(q.get('i')) : 0;
  if (!/^\/v2\/.+\/blobs\/sha256:[0-9a-f]{64}(\?.*)?$/.test(path) || !Number.isSafeInteger(size) || size < 1 || !Number.isSafeInteger(i) || i < 0) {
    throw new RangeError(`bad request: ${(req.url ?? '').slice(0, 200)}`);
  }
  return { path, size, i };
}

function fail(res: ServerResponse, status: number, err: unknown): void {
  process.stderr.write(`cpu-floor: ${(err as Error).message}\n`);
  if (!res.headersSent) res.writeHead(status).end((err as Error).message);
  else res.destroy();
}

function seed(registryUrl: string, dir: string): http.RequestListener {
  const fills = new Map<string, SeedFill>();
  return (req, res) => {
    const { path, size, i } = blobQuery(req, true);
    let fill = fills.get(path);
    if (fill === undefined) fills.set(path, (fill = new SeedFill(registryUrl, path, size, join(dir, `seed-${fills.size}`))));
    const f = fill;
    f.whole(i).then(
      (piece) => {
        res.writeHead(200, { 'content-length': pieceSpan(f.layout, i).length, [HEADER_SHA]: piece.sha256 });
        for (const c of piece.chunks) res.write(c);
        res.end(() => f.served(piece));
      },
      (err: unknown) => fail(res, 502, err),
    );
  };
}

async function fetchPiece(seedUrl: string, path: string, size: number, i: number, length: number): Promise<Buffer[]> {
  const res = await get(`${seedUrl}/piece?path=${encodeURIComponent(path)}&size=${size}&i=${i}`);
  if (res.statusCode !== 200) throw new Error(`seed answered ${String(res.statusCode)} for piece ${i}`);
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const c of res as AsyncIterable<Buffer>) {
    hash.update(c);
    chunks.push(c);
    bytes += c.length;
  }
  if (bytes !== length || hash.digest('hex') !== res.headers[HEADER_SHA]) throw new Error(`piece ${i} did not match its hash`);
  return chunks;
}

function sink(seedUrl: string, dir: string): http.RequestListener {
  let blobs = 0;
  return (req, res) => {
    const { path, size } = blobQuery(req, false);
    (async () => {
      const layout = pieceLayout(size);
      const file = await newFile(join(dir, `sink-${blobs++}`));
      const fetches = new Map<number, Promise<Buffer[]>>();
      let next = 0;
      const start = (): void => {
        const i = next++;
        const p = fetchPiece(seedUrl, path, size, i, pieceSpan(layout, i).length);
        p.catch(() => undefined);
        fetches.set(i, p);
      };
      while (next < Math.min(SINK_WINDOW, layout.pieceCount)) start();
      res.writeHead(200, { 'content-length': size });
      for (let i = 0; i < layout.pieceCount; i++) {
        const chunks = await (fetches.get(i) as Promise<Buffer[]>);
        fetches.delete(i);
        if (next < layout.pieceCount) start();
        for (const c of chunks) await file.writer.push(c);
        for (const c of chunks) if (!res.write(c)) await once(res, 'drain');
      }
      await file.finish();
      res.end();
    })().catch((err: unknown) => fail(res, 502, err));
  };
}

const [role, upstream, dir, port] = process.argv.slice(2);
if ((role !== 'seed' && role !== 'sink') || upstream === undefined || dir === undefined || port === undefined) {
  process.stderr.write('usage: cpu-floor.js seed|sink <upstream base URL> <dir> <port>\n');
  process.exit(2);
}
const handler = role === 'seed' ? seed(upstream, dir) : sink(upstream, dir);
http
  .createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    if (req.url === '/readyz') res.writeHead(200).end('ok');
    else {
      try {
        handler(req, res);
      } catch (err) {
        fail(res, 400, err);
      }
    }
  })
  .listen(Number(port), '127.0.0.1');
