import type { Logger, PeerMessage, PrefetchBlob, SupernodeMessage } from '@shoal/core';
import type { RuntimePuller } from './cri/runtime-puller.js';

/** Blobs of preheat jobs filled at once on this node. Blobs. */
export const DEFAULT_PREFETCH_CONCURRENCY = 3;
/** Blobs waiting their turn at most; beyond it a blob is answered as failed at once. Blobs. */
export const DEFAULT_MAX_PREFETCH_QUEUED = 8192;
/** How often a job with blobs still filling reports its bytes (`prefetchProgress`). Milliseconds. */
export const PREFETCH_PROGRESS_INTERVAL_MS = 1_000;

export type PrefetchMessage = Extract<SupernodeMessage, { type: 'prefetch' }>;
export type PrefetchedMessage = Extract<PeerMessage, { type: 'prefetched' }>;
export type PrefetchProgressMessage = Extract<PeerMessage, { type: 'prefetchProgress' }>;
export type RuntimePullMessage = Extract<SupernodeMessage, { type: 'runtimePull' }>;

/** What fills the store (the node's Peer). */
export interface PrefetchTarget {
  prefetch(blob: PrefetchBlob, options: { signal?: AbortSignal }): Promise<'local' | 'fetched'>;
  /** Verified bytes of the blob in the store now (for progress). */
  storedBytes?(digest: string): number;
}

/** Progress of one job's blobs on this node; one entry per job with blobs queued or filling (bounded by the queue). */
interface JobProgress {
  report: (message: PrefetchProgressMessage) => void;
  /** Bytes of this job's blobs answered ok. */
  doneBytes: number;
  /** Blobs queued or filling. */
  open: Map<string, number>;
  lastSent: number;
}

interface Queued {
  job: string;
  blob: PrefetchBlob;
  reply: (message: PrefetchedMessage) => void;
}

/**
 * The peer's side of preheat into nodes: the supernode's `prefetch` frames
 * queue blobs (bounded), filled a few at a time through the swarm, each
 * answered with one `prefetched` frame.
 */
export class Prefetcher {
  private readonly log: Logger;
  private readonly target: PrefetchTarget;
  private readonly concurrency: number;
  private readonly maxQueued: number;
  private readonly queue: Queued[] = [];
  private running = 0;
  private readonly abort = new AbortController();
  private readonly progress = new Map<string, JobProgress>();
  private progressTimer: NodeJS.Timeout | undefined;
  private readonly runtime: RuntimePuller | undefined;

  constructor(components: { log: Logger; target: PrefetchTarget; runtime?: RuntimePuller | undefined }, init: { concurrency?: number; maxQueued?: number } = {}) {
    this.log = components.log.child({ module: 'prefetch' });
    this.target = components.target;
    this.runtime = components.runtime;
    this.concurrency = Math.max(1, init.concurrency ?? DEFAULT_PREFETCH_CONCURRENCY);
    this.maxQueued = Math.max(1, init.maxQueued ?? DEFAULT_MAX_PREFETCH_QUEUED);
  }

  /** Blobs queued or being filled now. */
  get pending(): number {
    return this.queue.length + this.running;
  }

  /** `progress`, when given, hears the job's bytes about once a second while its blobs fill. */
  handle(message: PrefetchMessage, reply: (message: PrefetchedMessage) => void, progress?: (message: PrefetchProgressMessage) => void): void {
    this.log.info({ job: message.job, blobs: message.blobs.length }, 'prefetch asked by the supernode');
    for (const blob of message.blobs) {
      if (this.abort.signal.aborted) {
        reply({ type: 'prefetched', job: message.job, digest: blob.digest, ok: false, error: 'the peer is shutting down' });
      } else if (this.pending >= this.maxQueued) {
        reply({ type: 'prefetched', job: message.job, digest: blob.digest, ok: false, error: `busy: ${this.pending} blobs are already being prefetched on this node` });
      } else {
        this.queue.push({ job: message.job, blob, reply });
        let p = progress === undefined ? undefined : this.progress.get(message.job);
        if (p === undefined && progress !== undefined) {
          p = { report: progress, doneBytes: 0, open: new Map(), lastSent: -1 };
          this.progress.set(message.job, p);
        }
        p?.open.set(blob.digest, blob.sizeBytes);
      }
    }
    this.startProgress();
    this.pump();
  }

  /**
   * The supernode's `runtimePull`: every blob of the job is in this store;
   * the container runtime pulls the image (through this node's proxy). One
   * `runtimePulled` answer; a node without a runtime puller answers `unavailable`.
   */
  handleRuntimePull(message: RuntimePullMessage, reply: (message: PeerMessage) => void): void {
    this.log.info({ job: message.job, image: message.image, policy: message.policy }, 'runtime pull asked by the supernode');
    if (this.runtime === undefined) {
      reply({ type: 'runtimePulled', job: message.job, outcome: 'unavailable', durationMs: 0, error: 'this node agent has no container runtime socket configured' });
      return;
    }
    void this.runtime.pull({ job: message.job, image: message.image, policy: message.policy, auth: message.auth }).then((r) => {
      reply({ type: 'runtimePulled', job: message.job, outcome: r.outcome, durationMs: r.durationMs, ...(r.imageRef === undefined || r.imageRef === '' ? {} : { imageRef: r.imageRef.slice(0, 300) }), ...(r.error === undefined ? {} : { error: r.error }) });
    });
  }

  private startProgress(): void {
    if (this.progressTimer !== undefined || this.progress.size === 0) return;
    this.progressTimer = setInterval(() => this.sendProgress(), PREFETCH_PROGRESS_INTERVAL_MS);
    this.progressTimer.unref();
  }

  private sendProgress(): void {
    for (const [job, p] of this.progress) {
      let bytes = p.doneBytes;
      for (const [digest, size] of p.open) bytes += Math.min(size, this.target.storedBytes?.(digest) ?? 0);
      if (bytes !== p.lastSent) {
        p.lastSent = bytes;
        p.report({ type: 'prefetchProgress', job, bytesDone: bytes });
      }
      if (p.open.size === 0) this.progress.delete(job);
    }
    if (this.progress.size === 0 && this.progressTimer !== undefined) {
      clearInterval(this.progressTimer);
      this.progressTimer = undefined;
    }
  }

  private settled(job: string, digest: string, ok: boolean): void {
    const p = this.progress.get(job);
    if (p === undefined) return;
    const size = p.open.get(digest);
    p.open.delete(digest);
    if (ok && size !== undefined) p.doneBytes += size;
  }

  private pump(): void {
    while (this.running < this.concurrency && this.queue.length > 0) {
      const item = this.queue.shift() as Queued;
      this.running++;
      void this.one(item).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  private async one({ job, blob, reply }: Queued): Promise<void> {
    const startedAt = Date.now();
    try {
      const how = await this.target.prefetch(blob, { signal: this.abort.signal });
      this.log.info({ job, digest: blob.digest, sizeBytes: blob.sizeBytes, how, durationMs: Date.now() - startedAt }, 'blob prefetched');
      this.settled(job, blob.digest, true);
      reply({ type: 'prefetched', job, digest: blob.digest, ok: true });
    } catch (err) {
      const error = (err instanceof Error ? err.message : String(err)).slice(0, 2000);
      this.log.warn({ job, digest: blob.digest, err: error }, 'prefetch of a blob failed');
      this.settled(job, blob.digest, false);
      reply({ type: 'prefetched', job, digest: blob.digest, ok: false, error });
    }
  }

  /** Stops waiting on every fill (the fills belong to the Peer, which cancels them on close). */
  close(): void {
    this.abort.abort(new Error('the peer is shutting down'));
    this.queue.length = 0;
    this.progress.clear();
    clearInterval(this.progressTimer);
    this.progressTimer = undefined;
    this.runtime?.close();
  }
}
