import {
  destroyQuietly,
  BlobUnknownError,
  UpstreamError,
  sha256Hex,
  systemClock,
  type Clock,
  type Digest,
  type Logger,
  type TaskInfo,
  type TaskRequest,
  type TaskWaiting,
} from '@shoal/core';
import type { Readable } from 'node:stream';
import type { BlobRecord, PieceStoreApi } from '@shoal/store';
import { parseRetryAfter, type RegistryClientApi } from '@shoal/registry-client';
import { BackToSourceBackoffError, UpstreamDeniedError, UpstreamTooSlowError } from './errors.js';
import { ResumableBody } from './resumable-body.js';

/** Back-to-source downloads running at once; more wait their turn. */
export const DEFAULT_MAX_CONCURRENT_FETCHES = 16;

/**
 * Back-to-source downloads from one registry at once, at most: one slow or
 * trickling registry cannot hold every fetch slot and starve the others. A
 * quarter (4 of 16), not more: parallel fetches share the registry's link, and
 * where that is one drop-tail queue TCP shares it unevenly. With 8 at once over
 * 10 Mbit/s, flows whose window collapsed got about 20 KB/s while the others
 * got 130–700 (three 3.2 MiB layers took 55–61 s against 10–22 for the rest),
 * and a new connection starved the same way; with 4 the longest of 20 layers
 * took 25 s, and the swarm finished sooner (bench:swarm, 20 layers: fetch
 * p50 1.28 and 1.21 × S/B, against 1.30–1.84 with 8). Four connections still
 * take what a registry gives one client.
 * @default a quarter of maxConcurrentFetches (at least 1)
 */
export const DEFAULT_MAX_FETCHES_PER_REGISTRY_DIVISOR = 4;

/** Back-to-source downloads from one registry at once by default, for a cap of `maxConcurrentFetches` in all. */
export function defaultFetchesPerRegistry(maxConcurrentFetches: number = DEFAULT_MAX_CONCURRENT_FETCHES): number {
  return Math.max(1, Math.floor(maxConcurrentFetches / DEFAULT_MAX_FETCHES_PER_REGISTRY_DIVISOR));
}

/**
 * A blob this small (by the size the node's HEAD gave it) neither waits for
 * one of its registry's fetch slots nor takes one, only one of the
 * supernode's. An image's config is one short request that a pull needs
 * before it can unpack, and behind four layers' fetches it waited 4–9 s
 * (bench:swarm, N = 16, 25 Mbit/s: the config's fetch began 4.1–8.7 s after
 * the first layer's in 8 of 20 runs). A node that calls a large blob small
 * gains nothing: the fetch fails on the registry's Content-Length.
 */
export const SMALL_BLOB_BYTES = 1024 * 1024;

/**
 * A back-to-source download must bring at least this many bytes per second,
 * over each FETCH_PROGRESS_WINDOW_MS, or it goes on on a new connection (once:
 * the old one may be dead), and after that is cut and its slot freed. Bytes
 * per second: 8 KiB/s, far below any useful share of a registry's link (16
 * fetches on 10 Mbit/s still get ~75 KiB/s each). An upstream that sends a
 * byte every few seconds resets every "no byte for N s" timer; this does not.
 */
export const MIN_FETCH_BYTES_PER_SEC = 8 * 1024;

/** The span each back-to-source progress judgement covers. Milliseconds. */
export const FETCH_PROGRESS_WINDOW_MS = 10_000;

/**
 * New connections in a row a back-to-source fetch may go on with (ResumableBody)
 * when each brought less than RESUME_PROGRESS_BYTES: a registry that keeps
 * breaking its answers fails the fetch.
 */
export const MAX_RESUMES_WITHOUT_PROGRESS = 3;
/** Bytes a connection must bring for the next break to count as a fresh one. */
export const RESUME_PROGRESS_BYTES = 1024 * 1024;

/**
 * Longest time a failed back-to-source start (429, 5xx, registry unreachable)
 * is remembered, whatever `Retry-After` asked for. Milliseconds.
 */
export const MAX_FAILED_START_MEMORY_MS = 10_000;

/** How long a failed start is remembered when the registry named no `Retry-After`. Milliseconds. */
export const DEFAULT_FAILED_START_MEMORY_MS = 2_000;

/** Most failed starts remembered at once (oldest dropped first). Entries. */
export const MAX_FAILED_STARTS = 10_000;

export interface BlobTasksComponents {
  log: Logger;
  store: PieceStoreApi;
  registry: RegistryClientApi;
  /** For the failed-start memory. @default systemClock */
  clock?: Clock;
}

export interface BlobTasksInit {
  /** @default DEFAULT_MAX_CONCURRENT_FETCHES */
  maxConcurrentFetches?: number;
  /** @default defaultFetchesPerRegistry(maxConcurrentFetches) */
  maxFetchesPerRegistry?: number;
  /** @default MIN_FETCH_BYTES_PER_SEC */
  minFetchBytesPerSec?: number;
  /** @default FETCH_PROGRESS_WINDOW_MS */
  fetchProgressWindowMs?: number;
}

interface FailedStart {
  readonly error: Error;
  readonly until: number;
}

interface InflightTask {
  /** Settles once the registry has answered with headers and the record exists. */
  started: Promise<void>;
  abort: AbortController;
  /**
   * Where the fetch stands, updated as it goes: waiting for a fetch slot, for
   * the registry's answer, or reading the body; and when a byte of the blob
   * last came from the registry (or the body began), to the progress check's second.
   */
  state: { phase: 'queued' | 'starting' | 'running'; lastByteMs: number };
  /** The registry whose fetch slot it takes (undefined: a small blob, only one of the supernode's). */
  lane: string | undefined;
  /** When it was first asked for. */
  askedAtMs: number;
}

export function taskInfoOf(record: BlobRecord, error?: string): TaskInfo {
  const info: TaskInfo = {
    digest: record.digest,
    sizeBytes: record.layout.blobSizeBytes,
    pieceSizeBytes: record.layout.pieceSizeBytes,
    pieceCount: record.layout.pieceCount,
    pieceSha256: [...record.pieceSha256],
    complete: record.complete,
  };
  if (error !== undefined) info.error = error;
  return info;
}

/**
 * The supernode's cache fill: each blob is fetched from its registry at most
 * once at a time, however many peers ask at the same instant. Everyone who
 * asks while the download runs joins it and reads pieces as they are
 * verified. The download belongs to the cluster, not to the peer that
 * started it: it runs to the end even if that peer goes away.
 *
 * A start that fails because the registry is in trouble (429, 5xx,
 * unreachable) is remembered per (digest, registry, repository, credential)
 * for min(Retry-After, 10 s), or 2 s without Retry-After: the peers that ask
 * in that window get the failure at once instead of each hitting a registry
 * that asked to be left alone. Refusals (401/403/404) are not remembered:
 * they depend on the credential and must not outlive a push or a grant.
 */
export class BlobTasks {
  private readonly log: Logger;
  private readonly store: PieceStoreApi;
  private readonly registry: RegistryClientApi;
  private readonly inflight = new Map<Digest, InflightTask>();
  private readonly maxConcurrent: number;
  private readonly maxPerRegistry: number;
  private readonly minBytesPerSec: number;
  private readonly progressWindowMs: number;
  private running = 0;
  /** Fetches running per registry host (entries only while > 0). */
  private readonly runningPerRegistry = new Map<string, number>();
  /**
   * Fetches waiting for a slot, oldest first (bounded by the blobs asked for
   * at once); `registry` undefined for a small blob, which needs no registry slot.
   */
  private readonly queue: Array<{ digest: Digest; registry: string | undefined; go: () => void }> = [];
  private readonly clock: Clock;
  /** Failed starts by failureKey, bounded by MAX_FAILED_STARTS and MAX_FAILED_START_MEMORY_MS. */
  private readonly failedStarts = new Map<string, FailedStart>();

  /** Called when a fetch from the registry that had started ends (a metric). */
  onFetchDone: (result: 'ok' | 'failed', seconds: number) => void = () => undefined;
  /** Called when a fetch goes on on a new connection (a metric): the old one broke, or brought under the minimum rate. */
  onFetchResumed: () => void = () => undefined;

  constructor(components: BlobTasksComponents, init: BlobTasksInit = {}) {
    this.log = components.log.child({ module: 'blob-tasks' });
    this.store = components.store;
    this.registry = components.registry;
    this.clock = components.clock ?? systemClock;
    this.maxConcurrent = init.maxConcurrentFetches ?? DEFAULT_MAX_CONCURRENT_FETCHES;
    this.maxPerRegistry = init.maxFetchesPerRegistry ?? defaultFetchesPerRegistry(this.maxConcurrent);
    this.minBytesPerSec = init.minFetchBytesPerSec ?? MIN_FETCH_BYTES_PER_SEC;
    this.progressWindowMs = init.fetchProgressWindowMs ?? FETCH_PROGRESS_WINDOW_MS;
  }

  /** Digests being fetched from registries now. */
  get inflightCount(): number {
    return this.inflight.size;
  }

  /** Blobs waiting for a fetch slot now. */
  get queuedCount(): number {
    return this.queue.length;
  }

  isInflight(digest: Digest): boolean {
    return this.inflight.has(digest);
  }

  /**
   * How long ago a byte of `digest` last came from the registry (since its
   * task began, if none yet); undefined when it is not being fetched. Requests
   * held for its pieces wait as long as this stays short: a slow fetch is
   * moving, not dead.
   */
  fetchQuietMs(digest: Digest): number | undefined {
    const task = this.inflight.get(digest);
    return task === undefined ? undefined : this.clock.now() - task.state.lastByteMs;
  }

  info(digest: Digest): TaskInfo | undefined {
    const record = this.store.get(digest);
    return record === undefined ? undefined : taskInfoOf(record);
  }

  /**
   * Makes sure the blob is cached or being cached; resolves with what is known
   * once its fetch has begun, however long it waits for a fetch slot.
   */
  async ensure(request: TaskRequest & { digest: Digest }, authorization: string | undefined): Promise<TaskInfo> {
    const task = this.join(request, authorization);
    if (task !== undefined) await task.started;
    return this.startedInfo(request.digest);
  }

  /**
   * As ensure, but waits at most `waitMs` for the fetch to begin: past that it
   * resolves with where the blob stands in the queue (the caller asks again).
   * A task call is then never silent for long, whatever the queue.
   */
  async ensureWithin(request: TaskRequest & { digest: Digest }, authorization: string | undefined, waitMs: number): Promise<TaskInfo | TaskWaiting> {
    const task = this.join(request, authorization);
    if (task !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      const waited = new Promise<'waiting'>((resolve) => {
        timer = setTimeout(() => resolve('waiting'), waitMs);
      });
      try {
        if ((await Promise.race([task.started, waited])) === 'waiting') return this.waitingOf(request.digest, task);
      } finally {
        clearTimeout(timer);
      }
    }
    return this.startedInfo(request.digest);
  }

  /** The blob's fetch, started if need be; undefined when it is cached whole. */
  private join(request: TaskRequest & { digest: Digest }, authorization: string | undefined): InflightTask | undefined {
    if (this.store.get(request.digest)?.complete === true) return undefined;
    const task = this.inflight.get(request.digest);
    if (task !== undefined) return task;
    const key = failureKey(request, authorization);
    const failed = this.failedStarts.get(key);
    if (failed !== undefined) {
      const leftMs = failed.until - this.clock.now();
      if (leftMs > 0) throw new BackToSourceBackoffError(request.digest, leftMs, failed.error);
      this.failedStarts.delete(key);
    }
    return this.start(request, authorization);
  }

  private startedInfo(digest: Digest): TaskInfo {
    const record = this.store.get(digest);
    if (record === undefined) throw new BlobUnknownError(digest);
    return taskInfoOf(record);
  }

  /** Where a fetch that has not begun stands: its place in the queue, and whether the fetches ahead of it move. */
  private waitingOf(digest: Digest, task: InflightTask): TaskWaiting {
    const now = this.clock.now();
    const waiting: TaskWaiting = { digest, phase: task.state.phase === 'queued' ? 'queued' : 'starting', ahead: 0, waitedMs: Math.max(0, Math.round(now - task.askedAtMs)) };
    if (task.state.phase !== 'queued') return waiting;
    const position = this.queue.findIndex((w) => w.digest === digest);
    waiting.ahead = this.queue.slice(0, Math.max(0, position)).filter((w) => task.lane === undefined || w.registry === task.lane).length;
    // A slot this one can take frees when a fetch of its registry ends (or, with
    // none of them holding a slot, any fetch: the supernode's own cap is full).
    const holding = [...this.inflight.values()].filter((t) => t.state.phase !== 'queued');
    const sameLane = holding.filter((t) => task.lane !== undefined && t.lane === task.lane);
    const running = (sameLane.length > 0 ? sameLane : holding).filter((t) => t.state.phase === 'running');
    if (running.length > 0) waiting.aheadQuietMs = Math.max(0, Math.round(Math.min(...running.map((t) => now - t.state.lastByteMs))));
    return waiting;
  }

  private start(request: TaskRequest & { digest: Digest }, authorization: string | undefined): InflightTask {
    const abort = new AbortController();
    const { digest } = request;
    const log = this.log.child({ digest, registry: request.registry, repository: request.repository });
    let release: (() => void) | undefined;
    let retryAfterMs: number | undefined;
    const state: InflightTask['state'] = { phase: 'queued', lastByteMs: this.clock.now() };
    // The registry whose fetch slot this takes: none for a small blob.
    const lane = request.sizeBytes !== undefined && request.sizeBytes <= SMALL_BLOB_BYTES ? undefined : request.registry;
    const started = (async () => {
      await this.acquire(digest, lane);
      state.phase = 'starting';
      release = () => this.release(lane);
      const startedAt = Date.now();
      const response = await this.registry.getBlob({
        registry: request.registry,
        repository: request.repository,
        digest,
        authorization,
        signal: abort.signal,
      });
      if (response.statusCode !== 200) {
        destroyQuietly(response.body);
        retryAfterMs = parseRetryAfter(response.headers['retry-after'], this.clock.now());
        if (response.statusCode === 404) throw new BlobUnknownError(digest);
        if (response.statusCode === 401 || response.statusCode === 403) throw new UpstreamDeniedError(digest, { upstreamStatus: response.statusCode });
        throw new UpstreamError(`registry answered ${response.statusCode} for ${digest}`, { upstreamStatus: response.statusCode });
      }
      const length = Number(response.headers['content-length']);
      const sizeBytes = Number.isSafeInteger(length) && length >= 0 ? length : request.sizeBytes;
      if (sizeBytes === undefined) {
        destroyQuietly(response.body);
        throw new UpstreamError(`registry sent ${digest} without a length`, { upstreamStatus: 200 });
      }
      if (request.sizeBytes !== undefined && request.sizeBytes !== sizeBytes) {
        // The registry's length stands: the fetch is everyone's, and one peer told a
        // wrong size (a broken proxy, a registry whose HEAD and GET disagree) must not
        // fail it for the rest. That peer's proxy sees the size differ and goes to the
        // registry itself. Only a blob let past its registry's fetch slots as small
        // stops here, so that a false size cannot open more fetches than the slots.
        if (lane === undefined && sizeBytes > SMALL_BLOB_BYTES) {
          destroyQuietly(response.body);
          throw new UpstreamError(`registry says ${digest} has ${sizeBytes} bytes, the peer was told ${request.sizeBytes}`, { upstreamStatus: 200 });
        }
        log.warn({ sizeBytes, toldBytes: request.sizeBytes }, 'the registry gives this blob another size than the peer was told; fetching it at the registry\'s');
      }
      try {
        await this.store.begin(digest, sizeBytes);
      } catch (err) {
        // No room (StoreFullError) or store closing: the body would hold its connection until a timeout.
        destroyQuietly(response.body);
        throw err;
      }
      log.info({ sizeBytes }, 'back-to-source started');
      state.phase = 'running';
      state.lastByteMs = this.clock.now();
      const body = new ResumableBody(response.body, sizeBytes, (offset, signal) => this.reopen(request, authorization, sizeBytes, offset, AbortSignal.any([abort.signal, signal])), {
        maxResumesWithoutProgress: MAX_RESUMES_WITHOUT_PROGRESS,
        progressBytes: RESUME_PROGRESS_BYTES,
        onResume: ({ offset, reason }) => {
          log.info({ offset, reason }, 'back-to-source goes on from where it was on a new connection');
          this.onFetchResumed();
          watch.restarted();
        },
      });
      const watch = this.watchProgress(digest, body, abort, state);
      // Runs on after `started` settles: the callers read pieces as they land.
      this.store
        .ingest(digest, sizeBytes, body, { signal: abort.signal, onChunk: watch.count })
        .then(
          () => {
            log.info({ sizeBytes, durationMs: Date.now() - startedAt }, 'back-to-source complete');
            this.onFetchDone('ok', (Date.now() - startedAt) / 1000);
          },
          (err: unknown) => {
            log.warn({ err }, 'back-to-source failed');
            this.onFetchDone('failed', (Date.now() - startedAt) / 1000);
          },
        )
        .finally(() => {
          watch.stop();
          this.inflight.delete(digest);
          release?.();
        });
    })();
    const task: InflightTask = { started, abort, state, lane, askedAtMs: this.clock.now() };
    this.inflight.set(digest, task);
    started.catch((err: unknown) => {
      log.warn({ err: err instanceof Error ? err.message : String(err) }, 'back-to-source could not start');
      this.inflight.delete(digest);
      release?.();
      if (isRegistryTrouble(err)) this.rememberFailedStart(failureKey(request, authorization), err, retryAfterMs);
    });
    return task;
  }

  private rememberFailedStart(key: string, error: UpstreamError, retryAfterMs: number | undefined): void {
    const memoryMs = Math.min(retryAfterMs ?? DEFAULT_FAILED_START_MEMORY_MS, MAX_FAILED_START_MEMORY_MS);
    if (memoryMs <= 0) return;
    const now = this.clock.now();
    this.failedStarts.delete(key);
    this.failedStarts.set(key, { error, until: now + memoryMs });
    if (this.failedStarts.size <= MAX_FAILED_STARTS) return;
    for (const [k, failed] of this.failedStarts) if (failed.until <= now) this.failedStarts.delete(k);
    for (const k of this.failedStarts.keys()) {
      if (this.failedStarts.size <= MAX_FAILED_STARTS) break;
      this.failedStarts.delete(k);
    }
  }

  /**
   * Counts a back-to-source body's bytes (`count`, called by the ingest with
   * each chunk's length) and cuts the download (through `abort`, which the
   * ingest's signal carries to the body) when a window passes with less than
   * the minimum rate: progress, not silence, keeps a fetch slot. Notes in
   * `state.lastByteMs` when bytes last came, at each check (not per chunk).
   */
  private watchProgress(digest: Digest, body: ResumableBody, abort: AbortController, state: InflightTask['state']): { count: (bytes: number) => void; restarted: () => void; stop: () => void } {
    let bytes = 0;
    let triedNewConnection = false;
    let bytesSeen = 0;
    let windowStartBytes = 0;
    let windowStartMs = this.clock.now();
    // The ingest listens from its first await on; an error before that must not go unhandled.
    body.on('error', () => undefined);
    const timer = setInterval(() => {
      const now = this.clock.now();
      if (bytes !== bytesSeen) {
        bytesSeen = bytes;
        state.lastByteMs = now;
      }
      const elapsedMs = now - windowStartMs;
      if (elapsedMs < this.progressWindowMs) return;
      const rate = ((bytes - windowStartBytes) * 1000) / elapsedMs;
      windowStartMs = now;
      windowStartBytes = bytes;
      if (rate >= this.minBytesPerSec) return;
      // Once, a new connection: the old one may be dead (a lost NAT mapping sends nothing,
      // and says nothing). A registry that is slow on the new one too is cut.
      if (!triedNewConnection && body.restart(`under ${this.minBytesPerSec} bytes/s over ${elapsedMs} ms`)) {
        triedNewConnection = true;
        return;
      }
      const err = new UpstreamTooSlowError(digest, rate, this.minBytesPerSec);
      this.log.warn({ digest, bytesPerSec: Math.round(rate) }, 'back-to-source too slow: cut, its slot freed');
      abort.abort(err);
      body.destroy(err);
    }, Math.min(1_000, this.progressWindowMs));
    timer.unref();
    return {
      count: (chunkBytes) => {
        bytes += chunkBytes;
      },
      // A new connection gets a whole window before it is judged.
      restarted: () => {
        windowStartMs = this.clock.now();
        windowStartBytes = bytes;
      },
      stop: () => clearInterval(timer),
    };
  }

  /**
   * Asks the registry for `digest` from byte `offset` on, for a fetch going on on a
   * new connection. A registry that ignores Range sends the whole blob again, and
   * the bytes before `offset` are dropped.
   */
  private async reopen(request: TaskRequest & { digest: Digest }, authorization: string | undefined, sizeBytes: number, offset: number, signal: AbortSignal): Promise<{ body: Readable; skipBytes: number }> {
    const { digest } = request;
    const response = await this.registry.getBlob({ registry: request.registry, repository: request.repository, digest, authorization, range: `bytes=${offset}-`, signal });
    if (response.statusCode === 200) return { body: response.body, skipBytes: offset };
    const contentRange = response.headers['content-range'];
    const expected = `bytes ${offset}-${sizeBytes - 1}/`;
    if (response.statusCode === 206 && typeof contentRange === 'string' && contentRange.startsWith(expected) && [String(sizeBytes), '*'].includes(contentRange.slice(expected.length))) {
      return { body: response.body, skipBytes: 0 };
    }
    destroyQuietly(response.body);
    const answer = response.statusCode === 206 ? `206 with range ${String(contentRange)}` : String(response.statusCode);
    throw new UpstreamError(`registry answered ${answer} when asked for bytes ${offset}- of ${digest}`, { upstreamStatus: response.statusCode });
  }

  private eligible(registry: string | undefined): boolean {
    return this.running < this.maxConcurrent && (registry === undefined || (this.runningPerRegistry.get(registry) ?? 0) < this.maxPerRegistry);
  }

  private take(registry: string | undefined): void {
    this.running++;
    if (registry !== undefined) this.runningPerRegistry.set(registry, (this.runningPerRegistry.get(registry) ?? 0) + 1);
  }

  /** A fetch slot, and one of `registry`'s when given. */
  private acquire(digest: Digest, registry: string | undefined): Promise<void> {
    if (this.eligible(registry)) {
      this.take(registry);
      return Promise.resolve();
    }
    return new Promise((resolve) =>
      this.queue.push({
        digest,
        registry,
        go: () => {
          this.take(registry);
          resolve();
        },
      }),
    );
  }

  private release(registry: string | undefined): void {
    this.running--;
    if (registry !== undefined) {
      const left = (this.runningPerRegistry.get(registry) ?? 1) - 1;
      if (left > 0) this.runningPerRegistry.set(registry, left);
      else this.runningPerRegistry.delete(registry);
    }
    // The oldest waiter whose registry has room: another registry's blobs do not wait behind a slow one's.
    const i = this.queue.findIndex((w) => this.eligible(w.registry));
    if (i >= 0) this.queue.splice(i, 1)[0]?.go();
  }

  /** Aborts every running download (shutdown). */
  close(): void {
    for (const task of this.inflight.values()) task.abort.abort(new Error('supernode shutting down'));
  }
}

/** A failed start is remembered per blob, where it comes from, and who asked (a hash of the credential). */
function failureKey(request: TaskRequest & { digest: Digest }, authorization: string | undefined): string {
  return `${request.digest}\n${request.registry}\n${request.repository}\n${sha256Hex(authorization ?? '')}`;
}

/** 429, 5xx, or no answer at all: the registry's trouble, not a verdict on this request. */
function isRegistryTrouble(err: unknown): err is UpstreamError {
  if (!(err instanceof UpstreamError)) return false;
  const status = err.upstreamStatus;
  return status === undefined || status === 429 || (status >= 500 && status <= 599);
}
