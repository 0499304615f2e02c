import { pause, type Logger } from '@shoal/core';
import { errorText, JobRunner, Slots, type ImagePullJobSummary, type PreheatStarter, type RunnerDeps } from './job-runner.js';
import { statusCodeOf, type ImagePullJobObject, type KubeAccess, type WatchEvent } from './kube.js';
import type { JobKind } from './spec.js';

const JOB_KINDS: readonly JobKind[] = ['ImagePullJob', 'ImageListPullJob'];

/** ImagePullJobs followed at once; more are ignored (and logged). Jobs. */
export const DEFAULT_MAX_JOBS = 500;
/** Node fills (preheat jobs) running at once across every ImagePullJob; below PreheatJobs' own cap of 100. */
export const DEFAULT_MAX_CONCURRENT_FILLS = 32;
/** How often a running fill's preheat job is read. Milliseconds. */
export const DEFAULT_POLL_MS = 1_000;
/** How often jobs look again at nodes and peers (new nodes for `Never`, the deadline). Milliseconds: 15 s. */
export const DEFAULT_RESYNC_MS = 15_000;
/** First wait before a node's next attempt; doubles per attempt up to MAX_RETRY_DELAY_MS. Milliseconds. */
export const DEFAULT_RETRY_DELAY_MS = 5_000;
/** First wait before listing again after the watch failed; doubles up to DEFAULT_MAX_WATCH_BACKOFF_MS. Milliseconds. */
export const DEFAULT_WATCH_BACKOFF_MS = 1_000;
export const DEFAULT_MAX_WATCH_BACKOFF_MS = 60_000;

export interface ImagePullJobControllerComponents {
  log: Logger;
  kube: KubeAccess;
  preheat: PreheatStarter;
  /** Node names of the live peers registered here (`--node-name`). */
  peerNodeNames: () => ReadonlySet<string>;
}

export interface ImagePullJobControllerInit {
  /** @default DEFAULT_MAX_JOBS */
  maxJobs?: number | undefined;
  /** @default DEFAULT_MAX_CONCURRENT_FILLS */
  maxConcurrentFills?: number | undefined;
  /** @default DEFAULT_POLL_MS */
  pollMs?: number | undefined;
  /** @default DEFAULT_RESYNC_MS */
  resyncMs?: number | undefined;
  /** @default DEFAULT_RETRY_DELAY_MS */
  retryDelayMs?: number | undefined;
  /** @default DEFAULT_WATCH_BACKOFF_MS */
  watchBackoffMs?: number | undefined;
  /** @default DEFAULT_MAX_WATCH_BACKOFF_MS */
  maxWatchBackoffMs?: number | undefined;
}

/**
 * The ImagePullJob controller: lists and watches ImagePullJobs, and for each
 * fills the selected nodes' stores through PreheatJobs (one preheat job per
 * node attempt), `parallelism` nodes at a time, writing progress to the
 * status subresource. A failure here is logged and retried; it never stops
 * the supernode.
 */
export class ImagePullJobController {
  private readonly log: Logger;
  private readonly kube: KubeAccess;
  private readonly preheat: PreheatStarter;
  private readonly peerNodeNames: () => ReadonlySet<string>;
  private readonly maxJobs: number;
  private readonly pollMs: number;
  private readonly resyncMs: number;
  private readonly retryDelayMs: number;
  private readonly watchBackoffMs: number;
  private readonly maxWatchBackoffMs: number;
  private readonly slots: Slots;
  private readonly runners = new Map<string, JobRunner>();
  /** Aborted when the controller stops (shutdown, or leadership lost); a new one per start. */
  private stop = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(components: ImagePullJobControllerComponents, init: ImagePullJobControllerInit = {}) {
    this.log = components.log.child({ module: 'image-pull-jobs' });
    this.kube = components.kube;
    this.preheat = components.preheat;
    this.peerNodeNames = components.peerNodeNames;
    this.maxJobs = Math.max(1, init.maxJobs ?? DEFAULT_MAX_JOBS);
    this.slots = new Slots(Math.max(1, init.maxConcurrentFills ?? DEFAULT_MAX_CONCURRENT_FILLS));
    this.pollMs = Math.max(1, init.pollMs ?? DEFAULT_POLL_MS);
    this.resyncMs = Math.max(1, init.resyncMs ?? DEFAULT_RESYNC_MS);
    this.retryDelayMs = Math.max(0, init.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS);
    this.watchBackoffMs = Math.max(1, init.watchBackoffMs ?? DEFAULT_WATCH_BACKOFF_MS);
    this.maxWatchBackoffMs = Math.max(this.watchBackoffMs, init.maxWatchBackoffMs ?? DEFAULT_MAX_WATCH_BACKOFF_MS);
  }

  /** Starts (or, after `close`, starts again: leadership regained) following both kinds of job. */
  start(): void {
    if (this.loop !== undefined) return;
    this.stop = new AbortController();
    this.log.info('ImagePullJob controller started');
    this.loop = Promise.all(JOB_KINDS.map((kind) => this.listAndWatch(kind).catch((err: unknown) => this.log.error({ err, kind }, 'ImagePullJob controller stopped')))).then(() => undefined);
  }

  /** Stops every runner and the watches (shutdown, or leadership lost). */
  async close(): Promise<void> {
    this.stop.abort(new Error('ImagePullJob controller stopping'));
    for (const runner of this.runners.values()) runner.cancel();
    this.runners.clear();
    await this.loop;
    this.loop = undefined;
  }

  /** Jobs followed now. */
  get size(): number {
    return this.runners.size;
  }

  /** Up to `limit` followed jobs with the status last written for each (for the status API). */
  summaries(limit: number): ImagePullJobSummary[] {
    const out: ImagePullJobSummary[] = [];
    for (const runner of this.runners.values()) {
      if (out.length >= limit) break;
      out.push(runner.summary());
    }
    return out;
  }

  private async listAndWatch(kind: JobKind): Promise<void> {
    const signal = this.stop.signal;
    let backoff = this.watchBackoffMs;
    while (!signal.aborted) {
      try {
        const list = await this.kube.listJobs(kind);
        if (list.truncated) this.log.warn({ listed: list.items.length }, 'more ImagePullJobs than one list returns: only the first are followed');
        const present = new Set<string>();
        for (const job of list.items) {
          present.add(keyOf(job));
          this.reconcile(job);
        }
        for (const [key, runner] of this.runners) {
          if (runner.kind === kind && !present.has(key)) {
            runner.cancel();
            this.runners.delete(key);
          }
        }
        backoff = this.watchBackoffMs;
        let resourceVersion = list.resourceVersion;
        let gone = false;
        await this.kube.watchJobs(kind, resourceVersion, (event) => {
          if (event.type === 'BOOKMARK') resourceVersion = event.resourceVersion;
          else if (event.type === 'ERROR') {
            gone = true;
            this.log.info({ code: event.code, message: event.message }, 'ImagePullJob watch ended with an error event: listing again');
          } else this.onEvent(event);
        }, signal);
        if (!gone) this.log.debug('ImagePullJob watch closed: listing again');
      } catch (err) {
        if (signal.aborted) return;
        this.log.warn({ kind, err: errorText(err), code: statusCodeOf(err), retryInMs: backoff }, 'ImagePullJob list or watch failed');
        await pause(backoff, signal);
        backoff = Math.min(backoff * 2, this.maxWatchBackoffMs);
        continue;
      }
      // A watch the server closed normally: list again soon, without hammering a server that keeps closing it.
      await pause(this.watchBackoffMs, signal);
    }
  }

  private onEvent(event: Exclude<WatchEvent, { type: 'BOOKMARK' | 'ERROR' }>): void {
    if (event.type === 'DELETED') {
      const key = keyOf(event.object);
      const runner = this.runners.get(key);
      if (runner !== undefined && runner.uid === event.object.metadata.uid) {
        runner.cancel();
        this.runners.delete(key);
      }
      return;
    }
    this.reconcile(event.object);
  }

  /** A new job, or a new spec (generation): (re)start its runner. Status-only changes are our own patches: ignored. */
  private reconcile(job: ImagePullJobObject): void {
    const key = keyOf(job);
    const existing = this.runners.get(key);
    if (existing !== undefined && existing.uid === job.metadata.uid && existing.generation === job.metadata.generation) return;
    if (existing !== undefined) {
      existing.cancel();
      this.runners.delete(key);
    } else if (this.runners.size >= this.maxJobs) {
      this.log.warn({ job: key, maxJobs: this.maxJobs }, 'too many ImagePullJobs: this one is ignored');
      return;
    }
    const runner = new JobRunner(this.deps, job, this.log.child({ imagePullJob: key }));
    this.runners.set(key, runner);
    runner.run().catch((err: unknown) => this.log.error({ err: errorText(err), job: key }, 'ImagePullJob runner failed'));
  }

  /** What every runner shares: the Kubernetes API, preheat, the fill slots and the timings. */
  private get deps(): RunnerDeps {
    return { kube: this.kube, preheat: this.preheat, peerNodeNames: this.peerNodeNames, slots: this.slots, pollMs: this.pollMs, resyncMs: this.resyncMs, retryDelayMs: this.retryDelayMs };
  }
}

function keyOf(job: ImagePullJobObject): string {
  return `${job.kind}/${job.metadata.namespace}/${job.metadata.name}`;
}

