import type { Logger, PeerMessage, PrefetchBlob, SupernodeMessage } from '@shoal/core';

/** Blobs of preheat jobs filled at once on this node. Blobs. */
export const DEFAULT_PREFETCH_CONCURRENCY = 3;
/** Blobs waiting their turn at most; beyond it a blob is answered as failed at once. Blobs. */
export const DEFAULT_MAX_PREFETCH_QUEUED = 8192;

export type PrefetchMessage = Extract<SupernodeMessage, { type: 'prefetch' }>;
export type PrefetchedMessage = Extract<PeerMessage, { type: 'prefetched' }>;

/** What fills the store (the node's Peer). */
export interface PrefetchTarget {
  prefetch(blob: PrefetchBlob, options: { signal?: AbortSignal }): Promise<'local' | 'fetched'>;
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

  constructor(components: { log: Logger; target: PrefetchTarget }, init: { concurrency?: number; maxQueued?: number } = {}) {
    this.log = components.log.child({ module: 'prefetch' });
    this.target = components.target;
    this.concurrency = Math.max(1, init.concurrency ?? DEFAULT_PREFETCH_CONCURRENCY);
    this.maxQueued = Math.max(1, init.maxQueued ?? DEFAULT_MAX_PREFETCH_QUEUED);
  }

  /** Blobs queued or being filled now. */
  get pending(): number {
    return this.queue.length + this.running;
  }

  handle(message: PrefetchMessage, reply: (message: PrefetchedMessage) => void): void {
    this.log.info({ job: message.job, blobs: message.blobs.length }, 'prefetch asked by the supernode');
    for (const blob of message.blobs) {
      if (this.abort.signal.aborted) {
        reply({ type: 'prefetched', job: message.job, digest: blob.digest, ok: false, error: 'the peer is shutting down' });
      } else if (this.pending >= this.maxQueued) {
        reply({ type: 'prefetched', job: message.job, digest: blob.digest, ok: false, error: `busy: ${this.pending} blobs are already being prefetched on this node` });
      } else {
        this.queue.push({ job: message.job, blob, reply });
      }
    }
    this.pump();
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
      reply({ type: 'prefetched', job, digest: blob.digest, ok: true });
    } catch (err) {
      const error = (err instanceof Error ? err.message : String(err)).slice(0, 2000);
      this.log.warn({ job, digest: blob.digest, err: error }, 'prefetch of a blob failed');
      reply({ type: 'prefetched', job, digest: blob.digest, ok: false, error });
    }
  }

  /** Stops waiting on every fill (the fills belong to the Peer, which cancels them on close). */
  close(): void {
    this.abort.abort(new Error('the peer is shutting down'));
    this.queue.length = 0;
  }
}
