import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { readBoundedJson } from './read-json.js';
import { SupernodeRefusedError, SupernodeUnresponsiveError } from './errors.js';
import { Agent, Pool } from 'undici';
import {
  destroyQuietly,
  ClusterAuth,
  API_PREFIX,
  HEADER,
  parseTaskInfo,
  parseWire,
  SwarmUnavailableError,
  PieceHashSchema,
  ScheduleResponseSchema,
  TaskWaitingSchema,
  type Digest,
  type ScheduleRequest,
  type ScheduleResponse,
  type Logger,
  type TaskInfo,
  type TaskRequest,
  type TaskWaiting,
} from '@shoal/core';

/**
 * How long a task call asks the supernode to hold it for a blob whose fetch
 * from the registry has not begun (`?waitMs=`, at most MAX_TASK_WAIT_MS). Then
 * the supernode says where the blob stands and the call is made again: a
 * queued blob is an answer every 5 s, never a call silent long enough for an
 * idle timer (the supernode's sockets' 60 s, the proxy's first byte, 30 s by
 * default) to end it. No shorter: every node waiting for the blob asks, as
 * often as a held schedule call (MAX_SCHEDULE_WAIT_MS) comes back.
 */
export const TASK_WAIT_MS = 5_000;

/**
 * Connections per supernode from one peer for piece requests. A request that
 * queues here is one the scheduler counts as a seed copy in progress while
 * none is, so the supernode hands a child no more requests to make than this
 * (frontier claims plus seed copies, see swarm.ts); 64 connections would
 * overflow a busy supernode's accept queue at 16 nodes. 16: a child alone in
 * a blob holds up to 8 frontier claims and 8 seed copies.
 */
const PIECE_CONNECTIONS_PER_SUPERNODE = 16;
/**
 * Connections per supernode for schedule and info calls: never queued behind piece bodies
 * or task calls, and room for a held schedule call (ScheduleRequest.waitMs) per blob of an
 * image fetched at once (containerd may fetch every layer at once). Opened as needed.
 */
const CONTROL_CONNECTIONS_PER_SUPERNODE = 32;
/**
 * Connections per supernode for task calls, a pool of their own: a task call is answered
 * once the supernode's fetch of the blob has begun, and that fetch may wait its turn behind
 * the supernode's others from the same registry (BlobTasks' per-registry cap) for as long
 * as they take. On the control pool such calls held every connection, and the node's
 * schedule calls for the layers already arriving queued behind them. Opened as needed.
 */
const TASK_CONNECTIONS_PER_SUPERNODE = 32;
/** Connections per supernode for piece-hash lookups (held until the supernode verified the piece): one per piece in a download window. */
const HASH_CONNECTIONS_PER_SUPERNODE = 8;
/** The peer's connection pools to one supernode, and how many connections each may open. */
const POOL_CONNECTIONS = {
  pieces: PIECE_CONNECTIONS_PER_SUPERNODE,
  control: CONTROL_CONNECTIONS_PER_SUPERNODE,
  tasks: TASK_CONNECTIONS_PER_SUPERNODE,
  hashes: HASH_CONNECTIONS_PER_SUPERNODE,
} as const;
type PoolKind = keyof typeof POOL_CONNECTIONS;
/**
 * Backstop only: headers may wait while the supernode holds a piece request for
 * a piece still in flight (PIECE_WAIT_MS), or fetches a blob's headers from a
 * slow registry. Whether a supernode is alive is judged by liveness probes
 * (see whileAlive), not by this.
 */
const HEADERS_TIMEOUT_MS = 120_000;
/** A piece body with no byte for this long is stalled (the supernode sends at its link's pace: any byte is progress). */
const BODY_TIMEOUT_MS = 15_000;
/**
 * A call unanswered this long makes the client ask the supernode whether it is
 * alive (GET /readyz on a connection of its own). A healthy supernode answers
 * task and schedule calls in milliseconds; a frozen or cut-off one never.
 */
export const LIVENESS_GRACE_MS = 1_000;
/** A liveness probe unanswered this long failed. Then a new blob hedges to the next supernode in rank. */
export const LIVENESS_PROBE_TIMEOUT_MS = 1_000;
/**
 * Probes failing in a row before a call to the only (or last) supernode is
 * given up. A CPU-starved supernode can be slow to answer, but not for this
 * many probes (about 2 s each): then the node goes on without it.
 */
export const LIVENESS_MAX_FAILED_PROBES = 8;
/** Largest JSON answer we read from a supernode (a TaskInfo of 1M pieces is ~70 MiB; cap far lower). */
const MAX_JSON_BYTES = 8 * 1024 * 1024;

export interface PieceResponse {
  /**
   * The piece's hash: in the headers, or, for a piece the supernode passes on
   * while it still arrives from the registry (cut-through), in a trailer after
   * the bytes, which this function answers once `body` has ended (undefined
   * before, or when none came).
   */
  sha256: string | (() => string | undefined);
  body: Readable;
}

const SHA256_HEX = /^[a-f0-9]{64}$/;

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
  /** Per supernode URL (bounded by `urls`): a pool per kind of call (POOL_CONNECTIONS), so none waits behind another. */
  private readonly pools = new Map<string, Record<PoolKind, Pool>>();
  /** When each supernode last sent us anything (an answer, piece bytes): bounded by `urls`. */
  private readonly heardAt = new Map<string, number>();
  /** The liveness probe in flight per supernode URL (bounded by `urls`). */
  private readonly probing = new Map<string, Promise<boolean>>();
  /** Liveness probes go on connections of their own, never queued behind piece requests. */
  private readonly probes = new Agent({ connections: 1, connectTimeout: LIVENESS_PROBE_TIMEOUT_MS, headersTimeout: LIVENESS_PROBE_TIMEOUT_MS, bodyTimeout: LIVENESS_PROBE_TIMEOUT_MS });
  private readonly auth: ClusterAuth;
  private readonly log: Logger;

  /** `auth`: the cluster's keys (requests are signed for the supernodes, the token is never sent); else built from `token`. */
  constructor(components: { log: Logger }, init: { supernodeUrls: readonly string[]; token?: string | undefined; auth?: ClusterAuth | undefined }) {
    this.urls = init.supernodeUrls;
    this.auth = init.auth ?? new ClusterAuth({}, { token: init.token });
    this.log = components.log.child({ module: 'supernode-client' });
  }

  private pool(url: string, kind: PoolKind = 'control'): Pool {
    let pools = this.pools.get(url);
    if (pools === undefined) {
      const open = (connections: number): Pool => new Pool(url, { connections, headersTimeout: HEADERS_TIMEOUT_MS, bodyTimeout: BODY_TIMEOUT_MS });
      pools = { pieces: open(POOL_CONNECTIONS.pieces), control: open(POOL_CONNECTIONS.control), tasks: open(POOL_CONNECTIONS.tasks), hashes: open(POOL_CONNECTIONS.hashes) };
      this.pools.set(url, pools);
    }
    return pools[kind];
  }

  private headers(method: string, path: string, extra: Record<string, string> = {}): Record<string, string> {
    return { ...extra, ...this.auth.sign(method, path, { kind: 'supernode' }) };
  }

  /**
   * The supernode at `url` sent us something (an answer, bytes of a piece):
   * it is alive, whatever its round-trip time. On a saturated link a probe's
   * answer waits behind seconds of queued piece bytes, so a probe alone would
   * call a busy supernode dead.
   */
  heard(url: string): void {
    if (this.urls.includes(url)) this.heardAt.set(url, Date.now());
  }

  /**
   * Whether `url` answers GET /readyz within LIVENESS_PROBE_TIMEOUT_MS (any
   * answer counts: it is not frozen). Calls waiting at once share one probe,
   * and its answer counts as hearing from the supernode: with a piece request
   * per connection held open on a slow link, each used to send its own every
   * second.
   */
  private probe(url: string): Promise<boolean> {
    let pending = this.probing.get(url);
    if (pending === undefined) {
      pending = this.probeOnce(url).finally(() => this.probing.delete(url));
      this.probing.set(url, pending);
    }
    return pending;
  }

  private async probeOnce(url: string): Promise<boolean> {
    try {
      const response = await this.probes.request({ origin: new URL(url).origin, path: '/readyz', method: 'GET', signal: AbortSignal.timeout(LIVENESS_PROBE_TIMEOUT_MS) });
      destroyQuietly(response.body);
      // An answer is news from it: calls whose grace ends within the next one need not ask again.
      this.heard(url);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Runs `call` against the supernode at `url`, watching that the supernode is
   * alive rather than timing the call: after LIVENESS_GRACE_MS without an
   * answer it is probed, again and again while the call waits. Each failed
   * probe is passed to `onSuspect` (a caller may hedge to another supernode);
   * after `maxFailedProbes` in a row the call is aborted with
   * SupernodeUnresponsiveError. A slow answer from a live supernode is waited for.
   */
  private async whileAlive<T>(url: string, signal: AbortSignal | undefined, call: (signal: AbortSignal) => Promise<T>, options: { onSuspect?: (failed: number) => void; maxFailedProbes?: number } = {}): Promise<T> {
    const abort = new AbortController();
    const combined = signal === undefined ? abort.signal : AbortSignal.any([signal, abort.signal]);
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    let failed = 0;
    const maxFailed = options.maxFailedProbes ?? LIVENESS_MAX_FAILED_PROBES;
    const next = (ms: number): void => {
      timer = setTimeout(() => {
        const probedAt = Date.now();
        if ((this.heardAt.get(url) ?? 0) >= probedAt - LIVENESS_GRACE_MS) {
          // It sent us something within the grace: alive, no need to ask.
          failed = 0;
          next(LIVENESS_GRACE_MS);
          return;
        }
        void this.probe(url).then((answered) => {
          if (settled) return;
          // Bytes from it while the probe waited prove it alive as well as an answer would.
          const alive = answered || (this.heardAt.get(url) ?? 0) >= probedAt - LIVENESS_GRACE_MS;
          failed = alive ? 0 : failed + 1;
          if (!alive) {
            this.log.warn({ supernode: url, failedProbes: failed }, 'supernode did not answer a liveness probe');
            options.onSuspect?.(failed);
          }
          if (failed >= maxFailed) abort.abort(new SupernodeUnresponsiveError({ url, failedProbes: failed, probeTimeoutMs: LIVENESS_PROBE_TIMEOUT_MS }));
          else next(alive ? LIVENESS_GRACE_MS : 0);
        });
      }, ms);
      timer.unref();
    };
    next(LIVENESS_GRACE_MS);
    try {
      return await call(combined);
    } catch (err) {
      if (abort.signal.aborted && signal?.aborted !== true) throw abort.signal.reason;
      throw err;
    } finally {
      settled = true;
      clearTimeout(timer);
    }
  }

  /**
   * Starts or joins the blob's fetch at the supernode at `url`, asking again
   * each time it answers that the fetch has not begun (202, a TaskWaiting,
   * passed to `onWaiting`) until it has: that a blob waits its turn at the
   * supernode is news, not silence.
   */
  private async createTaskAt(url: string, request: TaskRequest, authorization: string | undefined, signal: AbortSignal, onWaiting: (waiting: TaskWaiting) => void): Promise<{ info: TaskInfo; supernodeUrl: string }> {
    const path = `${API_PREFIX}/tasks?waitMs=${TASK_WAIT_MS}`;
    for (;;) {
      const response = await this.pool(url, 'tasks').request({
        path,
        method: 'POST',
        headers: this.headers('POST', path, {
          'content-type': 'application/json',
          ...(authorization === undefined ? {} : { [HEADER.registryAuthorization]: authorization }),
        }),
        body: JSON.stringify(request),
        signal,
      });
      this.heard(url);
      const json = await readJson(response.body, MAX_JSON_BYTES);
      if (response.statusCode === 202) {
        const waiting = parseWire(TaskWaitingSchema, json, 'task waiting');
        if (waiting.digest !== request.digest) throw new SwarmUnavailableError(`supernode ${url} answered for ${waiting.digest} when asked for ${request.digest}`);
        onWaiting(waiting);
        continue;
      }
      if (response.statusCode !== 200) {
        const { code, message } = (json ?? {}) as { code?: unknown; message?: unknown };
        throw new SupernodeRefusedError({ supernodeStatus: response.statusCode, code: typeof code === 'string' ? code : 'SHOAL_SUPERNODE', message: typeof message === 'string' ? message : `status ${response.statusCode}` });
      }
      return { info: parseTaskInfo(json, 'task info'), supernodeUrl: url };
    }
  }

  /**
   * Starts or joins the cluster download of a blob on its owning supernode,
   * in rendezvous order. A supernode that refuses the connection is passed at
   * once; one that does not answer a liveness probe (frozen, cut off) is
   * hedged: the next in rank is asked too, and the first answer wins. The
   * last one left is waited for as long as it is alive. While a supernode's
   * fetch of the blob waits its turn, `onWaiting` hears where it stands every
   * TASK_WAIT_MS.
   */
  async createTask(request: TaskRequest, authorization: string | undefined, signal?: AbortSignal, onWaiting: (waiting: TaskWaiting) => void = () => undefined): Promise<{ info: TaskInfo; supernodeUrl: string }> {
    const ranked = rankSupernodes(this.urls, request.digest);
    const errors: string[] = [];
    const done = new AbortController();
    const attemptSignal = signal === undefined ? done.signal : AbortSignal.any([signal, done.signal]);
    return new Promise((resolve, reject) => {
      let started = 0;
      let pending = 0;
      let finished = false;
      const finish = (fn: () => void): void => {
        if (finished) return;
        finished = true;
        done.abort(new Error('another supernode answered'));
        fn();
      };
      const startNext = (): void => {
        if (finished) return;
        const url = ranked[started++];
        if (url === undefined) {
          if (pending === 0) finish(() => reject(new SwarmUnavailableError(`no supernode could take ${request.digest}: ${errors.join('; ')}`)));
          return;
        }
        pending++;
        let hedged = false;
        const hedge = (): void => {
          if (hedged) return;
          hedged = true;
          startNext();
        };
        const isLast = started >= ranked.length;
        this.whileAlive(url, attemptSignal, (s) => this.createTaskAt(url, request, authorization, s, onWaiting), {
          onSuspect: () => {
            if (!isLast) this.log.warn({ supernode: url, digest: request.digest }, 'supernode not answering: asking the next in rank too');
            hedge();
          },
        }).then(
          (answer) => finish(() => resolve(answer)),
          (err: unknown) => {
            pending--;
            if (signal?.aborted === true) return finish(() => reject(err));
            // A refusal is the registry's answer (unknown blob, denied): another supernode would say the same.
            if (err instanceof SupernodeRefusedError) return finish(() => reject(err));
            if (finished) return;
            errors.push(`${url}: ${err instanceof Error ? err.message : String(err)}`);
            this.log.warn({ supernode: url, digest: request.digest, err: errors[errors.length - 1] }, 'supernode could not take the blob, trying the next');
            if (!hedged) hedge();
            else if (pending === 0 && started >= ranked.length) finish(() => reject(new SwarmUnavailableError(`no supernode could take ${request.digest}: ${errors.join('; ')}`)));
          },
        );
      };
      startNext();
    });
  }

  /** Asks the blob's supernode which pieces to fetch next and from whom. */
  async schedule(supernodeUrl: string, digest: Digest, request: ScheduleRequest, signal?: AbortSignal): Promise<ScheduleResponse> {
    const response = await this.whileAlive(supernodeUrl, signal, (s) =>
      this.pool(supernodeUrl).request({
        path: `${API_PREFIX}/blobs/${digest}/schedule`,
        method: 'POST',
        headers: this.headers('POST', `${API_PREFIX}/blobs/${digest}/schedule`, { 'content-type': 'application/json' }),
        body: JSON.stringify(request),
        signal: s,
      }),
    );
    this.heard(supernodeUrl);
    const json = await readJson(response.body, MAX_JSON_BYTES);
    if (response.statusCode !== 200) {
      const { code, message } = (json ?? {}) as { code?: unknown; message?: unknown };
      throw new SupernodeRefusedError({ supernodeStatus: response.statusCode, code: typeof code === 'string' ? code : 'SHOAL_SUPERNODE', message: typeof message === 'string' ? message : `status ${response.statusCode}` });
    }
    return parseWire(ScheduleResponseSchema, json, 'schedule response');
  }

  /** The supernode's view of a blob it is fetching or holds: size, piece hashes, whether complete. */
  async taskInfo(supernodeUrl: string, digest: Digest, signal?: AbortSignal): Promise<TaskInfo> {
    const path = `${API_PREFIX}/blobs/${digest}/info`;
    const response = await this.pool(supernodeUrl).request({ path, method: 'GET', headers: this.headers('GET', path), signal });
    this.heard(supernodeUrl);
    const json = await readJson(response.body, MAX_JSON_BYTES);
    if (response.statusCode !== 200) {
      const { code, message } = (json ?? {}) as { code?: unknown; message?: unknown };
      throw new SupernodeRefusedError({ supernodeStatus: response.statusCode, code: typeof code === 'string' ? code : 'SHOAL_SUPERNODE', message: typeof message === 'string' ? message : `status ${response.statusCode}` });
    }
    return parseTaskInfo(json, 'task info');
  }

  /** The supernode's hash of one piece, once it verified it (it waits for that): what a peer's copy is checked against. */
  async pieceSha256(supernodeUrl: string, digest: Digest, index: number, signal?: AbortSignal): Promise<string> {
    const path = `${API_PREFIX}/blobs/${digest}/pieces/${index}/sha256`;
    const response = await this.pool(supernodeUrl, 'hashes').request({ path, method: 'GET', headers: this.headers('GET', path), signal });
    this.heard(supernodeUrl);
    const json = await readJson(response.body, MAX_JSON_BYTES);
    if (response.statusCode !== 200) throw new SwarmUnavailableError(`supernode ${supernodeUrl} answered ${response.statusCode} for the hash of piece ${index} of ${digest}`);
    return parseWire(PieceHashSchema, json, 'piece hash').sha256;
  }

  /** Fetches one piece from a supernode; the caller verifies it before storing. */
  async fetchPiece(supernodeUrl: string, digest: Digest, index: number, signal?: AbortSignal): Promise<PieceResponse> {
    const response = await this.pool(supernodeUrl, 'pieces').request({
      path: `${API_PREFIX}/blobs/${digest}/pieces/${index}`,
      method: 'GET',
      headers: this.headers('GET', `${API_PREFIX}/blobs/${digest}/pieces/${index}`),
      signal,
    });
    this.heard(supernodeUrl);
    const sha = response.headers[HEADER.pieceSha256];
    const trailer = response.headers.trailer;
    const cutThrough = typeof trailer === 'string' && trailer.toLowerCase() === HEADER.pieceSha256;
    if (response.statusCode !== 200 || (!cutThrough && (typeof sha !== 'string' || !SHA256_HEX.test(sha)))) {
      destroyQuietly(response.body);
      throw new SwarmUnavailableError(`supernode ${supernodeUrl} answered ${response.statusCode} for piece ${index} of ${digest}`);
    }
    if (!cutThrough) return { sha256: sha as string, body: response.body };
    // undici fills `trailers` before the body ends.
    const trailers = response.trailers as Record<string, string | string[] | undefined>;
    return {
      sha256: () => {
        const late = trailers[HEADER.pieceSha256];
        return typeof late === 'string' && SHA256_HEX.test(late) ? late : undefined;
      },
      body: response.body,
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].flatMap((p) => Object.values(p).map((pool) => pool.close())));
    this.pools.clear();
    // Not close(): it would wait for a probe in flight, whose only timer (AbortSignal.timeout) does not keep the process alive.
    await this.probes.destroy();
  }
}
