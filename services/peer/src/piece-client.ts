import type { Readable } from 'node:stream';
import { Pool } from 'undici';
import { readBoundedJson } from './read-json.js';
import { ParentFailedError } from './errors.js';
import { API_PREFIX, audienceHost, ClusterAuth, destroyQuietly, ShoalError, type Digest } from '@shoal/core';
import type { FailureKindWire } from '@shoal/core';

/** Largest blob description a parent may send (a hash per piece). Bytes: 8 MiB. */
const MAX_INFO_BYTES = 8 * 1024 * 1024;
/** Pools kept to other peers at most (least recently used closed first). */
export const MAX_PEER_POOLS = 128;
/**
 * Connections to one parent: pieces are fetched a few at a time from each (a
 * parent takes up to maxUploadsPerPeer + 1 of them from one child), and a
 * request must not queue in the client while the scheduler counts it as an upload.
 */
const CONNECTIONS_PER_PEER = 8;
/**
 * A parent answers at once (it has the piece or not), but on a saturated slow
 * link its answer queues behind the piece bytes it is already sending us: at
 * 10 Mbit/s shared by 16 hosts a 256 KiB link queue alone holds 3 s. Waiting
 * longer than this means it is stuck.
 */
export const PEER_HEADERS_TIMEOUT_MS = 10_000;
/**
 * A parent that sends no byte for this long is stalled and replaced. A parent
 * that sends bytes too slowly is judged by its rate instead (FetchMeters).
 */
export const PEER_STALL_TIMEOUT_MS = 10_000;

// fetch-meter.ts still imports ParentFailedError from here; the class lives in errors.ts.
export { ParentFailedError };

/** Maps what went wrong talking to a parent onto the scheduler's failure kinds. */
export function failureKindOf(err: unknown): FailureKindWire {
  if (err instanceof ParentFailedError) return err.kind;
  if (err instanceof ShoalError && (err.code === 'SHOAL_DIGEST_MISMATCH' || err.code === 'SHOAL_SIZE_MISMATCH')) return 'bad-piece';
  const code = (err as { code?: unknown } | undefined)?.code;
  if (code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'ABORT_ERR') return 'stalled';
  return 'unreachable';
}

/** HTTP client for other peers' piece endpoints. */
export class PieceClient {
  private readonly pools = new Map<string, Pool>();
  private readonly auth: ClusterAuth;

  /** `auth`: the cluster's keys (requests are signed for the parent, the token is never sent); else built from `token`. */
  constructor(init: { token?: string | undefined; auth?: ClusterAuth | undefined }) {
    this.auth = init.auth ?? new ClusterAuth({}, { token: init.token });
  }

  /** Headers of one request to a parent: signed for that parent's address only. */
  private headers(url: URL, path: string): Record<string, string> {
    return this.auth.sign('GET', path, { kind: 'peer', host: audienceHost(url) });
  }

  private pool(origin: string): Pool {
    let pool = this.pools.get(origin);
    if (pool !== undefined) {
      this.pools.delete(origin);
      this.pools.set(origin, pool);
      return pool;
    }
    pool = new Pool(origin, { connections: CONNECTIONS_PER_PEER, headersTimeout: PEER_HEADERS_TIMEOUT_MS, bodyTimeout: PEER_STALL_TIMEOUT_MS, connectTimeout: 2_000 });
    this.pools.set(origin, pool);
    while (this.pools.size > MAX_PEER_POOLS) {
      const [oldest, old] = this.pools.entries().next().value as [string, Pool];
      this.pools.delete(oldest);
      void old.close().catch(() => undefined);
    }
    return pool;
  }

  /** Asks a parent for a piece; the body must be verified by the caller before it is used. */
  async fetchPiece(parentUrl: string, digest: Digest, index: number, signal: AbortSignal): Promise<Readable> {
    const url = new URL(parentUrl);
    const path = `${url.pathname.replace(/\/+$/, '')}${API_PREFIX}/blobs/${digest}/pieces/${index}`;
    let response;
    try {
      response = await this.pool(url.origin).request({
        path,
        method: 'GET',
        headers: this.headers(url, path),
        signal,
      });
    } catch (err) {
      throw new ParentFailedError(failureKindOf(err), `parent ${parentUrl}: ${(err as Error).message}`, { cause: err });
    }
    if (response.statusCode === 200) return response.body;
    destroyQuietly(response.body);
    const kind: FailureKindWire = response.statusCode === 404 ? 'missing' : response.statusCode === 503 ? 'busy' : 'unreachable';
    throw new ParentFailedError(kind, `parent ${parentUrl} answered ${response.statusCode} for piece ${index}`);
  }

  /** A parent's view of a blob: its size and piece hashes (untrusted: only the whole digest proves them). */
  async fetchInfo(parentUrl: string, digest: Digest, signal: AbortSignal): Promise<unknown> {
    const url = new URL(parentUrl);
    const path = `${url.pathname.replace(/\/+$/, '')}${API_PREFIX}/blobs/${digest}/info`;
    const response = await this.pool(url.origin).request({
      path,
      method: 'GET',
      headers: this.headers(url, path),
      signal,
    });
    if (response.statusCode !== 200) {
      destroyQuietly(response.body);
      throw new ParentFailedError('missing', `parent ${parentUrl} answered ${response.statusCode} for ${digest} info`);
    }
    return readBoundedJson(response.body, MAX_INFO_BYTES, () => new ParentFailedError('bad-piece', `parent ${parentUrl} sent an oversized info`));
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close().catch(() => undefined)));
    this.pools.clear();
  }
}
