import {
  BlobUnknownError,
  ShoalError,
  UpstreamError,
  type Digest,
  type Logger,
  type TaskInfo,
  type TaskRequest,
} from '@shoal/core';
import type { BlobRecord, PieceStoreApi } from '@shoal/store';
import type { RegistryClientApi } from '@shoal/registry-client';

/** Back-to-source downloads running at once; more wait their turn. */
export const DEFAULT_MAX_CONCURRENT_FETCHES = 16;

export interface BlobTasksComponents {
  log: Logger;
  store: PieceStoreApi;
  registry: RegistryClientApi;
}

export interface BlobTasksInit {
  /** @default DEFAULT_MAX_CONCURRENT_FETCHES */
  maxConcurrentFetches?: number;
}

interface InflightTask {
  /** Settles once the registry has answered with headers and the record exists. */
  started: Promise<void>;
  abort: AbortController;
}

/** The registry refused the credentials the peer passed on (or had none). */
export class UpstreamDeniedError extends ShoalError {
  constructor(status: number, digest: string) {
    super(`registry answered ${status} for ${digest}`, 'SHOAL_UPSTREAM_DENIED', 403, 'DENIED');
  }
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
 */
export class BlobTasks {
  private readonly log: Logger;
  private readonly store: PieceStoreApi;
  private readonly registry: RegistryClientApi;
  private readonly inflight = new Map<Digest, InflightTask>();
  private readonly maxConcurrent: number;
  private running = 0;
  private readonly queue: Array<() => void> = [];

  constructor(components: BlobTasksComponents, init: BlobTasksInit = {}) {
    this.log = components.log.child({ module: 'blob-tasks' });
    this.store = components.store;
    this.registry = components.registry;
    this.maxConcurrent = init.maxConcurrentFetches ?? DEFAULT_MAX_CONCURRENT_FETCHES;
  }

  /** Digests being fetched from registries now. */
  get inflightCount(): number {
    return this.inflight.size;
  }

  isInflight(digest: Digest): boolean {
    return this.inflight.has(digest);
  }

  info(digest: Digest): TaskInfo | undefined {
    const record = this.store.get(digest);
    return record === undefined ? undefined : taskInfoOf(record);
  }

  /** Makes sure the blob is cached or being cached; resolves with what is known now. */
  async ensure(request: TaskRequest & { digest: Digest }, authorization: string | undefined): Promise<TaskInfo> {
    const record = this.store.get(request.digest);
    if (record?.complete === true) return taskInfoOf(record);
    let task = this.inflight.get(request.digest);
    if (task === undefined) {
      task = this.start(request, authorization);
    }
    await task.started;
    const now = this.store.get(request.digest);
    if (now === undefined) throw new BlobUnknownError(request.digest);
    return taskInfoOf(now);
  }

  private start(request: TaskRequest & { digest: Digest }, authorization: string | undefined): InflightTask {
    const abort = new AbortController();
    const { digest } = request;
    const log = this.log.child({ digest, registry: request.registry, repository: request.repository });
    let release: (() => void) | undefined;
    const started = (async () => {
      await this.acquire();
      release = () => this.release();
      const startedAt = Date.now();
      const response = await this.registry.getBlob({
        registry: request.registry,
        repository: request.repository,
        digest,
        authorization,
        signal: abort.signal,
      });
      if (response.statusCode !== 200) {
        response.body.destroy();
        if (response.statusCode === 404) throw new BlobUnknownError(digest);
        if (response.statusCode === 401 || response.statusCode === 403) throw new UpstreamDeniedError(response.statusCode, digest);
        throw new UpstreamError(`registry answered ${response.statusCode} for ${digest}`, 502, response.statusCode);
      }
      const length = Number(response.headers['content-length']);
      const sizeBytes = Number.isSafeInteger(length) && length >= 0 ? length : request.sizeBytes;
      if (sizeBytes === undefined) {
        response.body.destroy();
        throw new UpstreamError(`registry sent ${digest} without a length`, 502, 200);
      }
      if (request.sizeBytes !== undefined && request.sizeBytes !== sizeBytes) {
        response.body.destroy();
        throw new UpstreamError(`registry says ${digest} has ${sizeBytes} bytes, the peer was told ${request.sizeBytes}`, 502, 200);
      }
      await this.store.begin(digest, sizeBytes);
      log.info({ sizeBytes }, 'back-to-source started');
      // Runs on after `started` settles: the callers read pieces as they land.
      this.store
        .ingest(digest, sizeBytes, response.body, { signal: abort.signal })
        .then(
          () => log.info({ sizeBytes, durationMs: Date.now() - startedAt }, 'back-to-source complete'),
          (err: unknown) => log.warn({ err }, 'back-to-source failed'),
        )
        .finally(() => {
          this.inflight.delete(digest);
          release?.();
        });
    })();
    const task: InflightTask = { started, abort };
    this.inflight.set(digest, task);
    started.catch((err: unknown) => {
      log.warn({ err: err instanceof Error ? err.message : String(err) }, 'back-to-source could not start');
      this.inflight.delete(digest);
      release?.();
    });
    return task;
  }

  private acquire(): Promise<void> {
    if (this.running < this.maxConcurrent) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.queue.push(() => {
      this.running++;
      resolve();
    }));
  }

  private release(): void {
    this.running--;
    this.queue.shift()?.();
  }

  /** Aborts every running download (shutdown). */
  close(): void {
    for (const task of this.inflight.values()) task.abort.abort(new Error('supernode shutting down'));
  }
}
