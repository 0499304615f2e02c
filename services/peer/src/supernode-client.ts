import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { readBoundedJson } from './read-json.js';
import { Pool } from 'undici';
import {
  destroyQuietly,
  API_PREFIX,
  ClusterAuth,
  HEADER,
  parseWire,
  ShoalError,
  SwarmUnavailableError,
  TaskInfoSchema,
  ScheduleResponseSchema,
  type Digest,
  type ScheduleRequest,
  type ScheduleResponse,
  type Logger,
  type TaskInfo,
  type TaskRequest,
} from '@shoal/core';

/** Connections per supernode from one peer. */
const CONNECTIONS_PER_SUPERNODE = 8;
/** Headers may wait while the supernode holds a piece request for a piece in flight (PIECE_WAIT_MS). */
const HEADERS_TIMEOUT_MS = 40_000;
/** A piece body with no byte for this long is stalled. */
const BODY_TIMEOUT_MS = 15_000;
/** A schedule call is answered from memory, but a CPU-starved supernode (16 nodes on 2 cores) took over 5 s: a dead one refuses connections instead, at once. */
const SCHEDULE_TIMEOUT_MS = 15_000;
/** Largest JSON answer we read from a supernode (a TaskInfo of 1M pieces is ~70 MiB; cap far lower). */
const MAX_JSON_BYTES = 8 * 1024 * 1024;

export interface PieceResponse {
  sha256: string;
  body: Readable;
}

/** The supernode answered with an error the peer should not retry elsewhere (e.g. upstream denied). */
export class SupernodeRefusedError extends ShoalError {
  constructor(status: number, code: string, message: string) {
    super(`supernode refused: ${message}`, code, status >= 500 ? 502 : status, 'UNKNOWN');
  }
}

/**
 * Rendezvous (highest random weight) order of supernodes for a digest: every
 * peer computes the same owner for a blob without talking to anyone, and when
 * the owner is down the next in rank takes over.
 */
export function rankSupernodes(urls: readonly string[], digest: string): string[] {
  const score = (url: string): string => createHash('sha256').update(`${url}\n${digest}`).digest('hex');
  return [...urls].sort((a, b) => (score(a) < score(b) ? 1 : score(a) > score(b) ? -1 : 0));
}

function readJson(body: Readable, limit: number): Promise<unknown> {
  return readBoundedJson(body, limit, () => new SwarmUnavailableError(`supernode answer larger than ${limit} bytes`));
}

/** HTTP client of the supernodes' peer API. */
export class SupernodeClient {
  readonly urls: readonly string[];
  private readonly pools = new Map<string, Pool>();
  private readonly auth: ClusterAuth;
  private readonly log: Logger;

  /** `auth`: the cluster's keys (requests are signed for the supernodes, the token is never sent); else built from `token`. */
  constructor(components: { log: Logger }, init: { supernodeUrls: readonly string[]; token?: string | undefined; auth?: ClusterAuth | undefined }) {
    this.urls = init.supernodeUrls;
    this.auth = init.auth ?? new ClusterAuth({}, { token: init.token });
    this.log = components.log.child({ module: 'supernode-client' });
  }

  private pool(url: string): Pool {
    let pool = this.pools.get(url);
    if (pool === undefined) {
      pool = new Pool(url, { connections: CONNECTIONS_PER_SUPERNODE, headersTimeout: HEADERS_TIMEOUT_MS, bodyTimeout: BODY_TIMEOUT_MS });
      this.pools.set(url, pool);
    }
    return pool;
  }

  /** Headers of one request, signed for the supernodes (`path` exactly as sent). */
  private headers(method: string, path: string, extra: Record<string, string> = {}): Record<string, string> {
    return { ...extra, ...this.auth.sign(method, path, { kind: 'supernode' }) };
  }

  /** Starts or joins the cluster download of a blob on its owning supernode (next in rank on failure). */
  async createTask(request: TaskRequest, authorization: string | undefined, signal?: AbortSignal): Promise<{ info: TaskInfo; supernodeUrl: string }> {
    const errors: string[] = [];
    for (const url of rankSupernodes(this.urls, request.digest)) {
      try {
        const response = await this.pool(url).request({
          path: `${API_PREFIX}/tasks`,
          method: 'POST',
          headers: this.headers('POST', `${API_PREFIX}/tasks`, {
            'content-type': 'application/json',
            ...(authorization === undefined ? {} : { [HEADER.registryAuthorization]: authorization }),
          }),
          body: JSON.stringify(request),
          signal,
        });
        const json = await readJson(response.body, MAX_JSON_BYTES);
        if (response.statusCode !== 200) {
          const { code, message } = (json ?? {}) as { code?: unknown; message?: unknown };
          throw new SupernodeRefusedError(response.statusCode, typeof code === 'string' ? code : 'SHOAL_SUPERNODE', typeof message === 'string' ? message : `status ${response.statusCode}`);
        }
        return { info: parseWire(TaskInfoSchema, json, 'task info'), supernodeUrl: url };
      } catch (err) {
        if (signal?.aborted === true) throw err;
        // A refusal is the registry's answer (unknown blob, denied): another supernode would say the same.
        if (err instanceof SupernodeRefusedError) throw err;
        errors.push(`${url}: ${err instanceof Error ? err.message : String(err)}`);
        this.log.warn({ supernode: url, digest: request.digest, err: errors[errors.length - 1] }, 'supernode unreachable, trying the next');
      }
    }
    throw new SwarmUnavailableError(`no supernode could take ${request.digest}: ${errors.join('; ')}`);
  }

  /** Asks the blob's supernode which pieces to fetch next and from whom. */
  async schedule(supernodeUrl: string, digest: Digest, request: ScheduleRequest, signal?: AbortSignal): Promise<ScheduleResponse> {
    const response = await this.pool(supernodeUrl).request({
      path: `${API_PREFIX}/blobs/${digest}/schedule`,
      method: 'POST',
      headers: this.headers('POST', `${API_PREFIX}/blobs/${digest}/schedule`, { 'content-type': 'application/json' }),
      body: JSON.stringify(request),
      signal,
      headersTimeout: SCHEDULE_TIMEOUT_MS,
    });
    const json = await readJson(response.body, MAX_JSON_BYTES);
    if (response.statusCode !== 200) {
      const { code, message } = (json ?? {}) as { code?: unknown; message?: unknown };
      throw new SupernodeRefusedError(response.statusCode, typeof code === 'string' ? code : 'SHOAL_SUPERNODE', typeof message === 'string' ? message : `status ${response.statusCode}`);
    }
    return parseWire(ScheduleResponseSchema, json, 'schedule response');
  }

  /** The supernode's view of a blob it is fetching or holds: size, piece hashes, whether complete. */
  async taskInfo(supernodeUrl: string, digest: Digest, signal?: AbortSignal): Promise<TaskInfo> {
    const path = `${API_PREFIX}/blobs/${digest}/info`;
    const response = await this.pool(supernodeUrl).request({ path, method: 'GET', headers: this.headers('GET', path), signal });
    const json = await readJson(response.body, MAX_JSON_BYTES);
    if (response.statusCode !== 200) {
      const { code, message } = (json ?? {}) as { code?: unknown; message?: unknown };
      throw new SupernodeRefusedError(response.statusCode, typeof code === 'string' ? code : 'SHOAL_SUPERNODE', typeof message === 'string' ? message : `status ${response.statusCode}`);
    }
    return parseWire(TaskInfoSchema, json, 'task info');
  }

  /** Fetches one piece from a supernode; the caller verifies it before storing. */
  async fetchPiece(supernodeUrl: string, digest: Digest, index: number, signal?: AbortSignal): Promise<PieceResponse> {
    const response = await this.pool(supernodeUrl).request({
      path: `${API_PREFIX}/blobs/${digest}/pieces/${index}`,
      method: 'GET',
      headers: this.headers('GET', `${API_PREFIX}/blobs/${digest}/pieces/${index}`),
      signal,
    });
    const sha = response.headers[HEADER.pieceSha256];
    if (response.statusCode !== 200 || typeof sha !== 'string' || !/^[a-f0-9]{64}$/.test(sha)) {
      destroyQuietly(response.body);
      throw new SwarmUnavailableError(`supernode ${supernodeUrl} answered ${response.statusCode} for piece ${index} of ${digest}`);
    }
    return { sha256: sha, body: response.body };
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close()));
    this.pools.clear();
  }
}
