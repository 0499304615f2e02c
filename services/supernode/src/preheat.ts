import { randomUUID } from 'node:crypto';
import {
  type Platform,
  MAX_BLOB_SIZE_BYTES,
  MAX_PREFETCH_BLOBS_PER_FRAME,
  MAX_PREHEAT_NODES,
  systemClock,
  type Clock,
  type Digest,
  type ImageReference,
  type Logger,
  type PreheatBlobState,
  type PreheatJob,
  type PreheatJobState,
  type PreheatNodes,
  type PreheatNodeState,
  type PrefetchBlob,
  type ImagePullPolicy,
  type RuntimePullOutcome,
} from '@shoal/core';
import type { PieceStoreApi } from '@shoal/store';
import type { RegistryClientApi } from '@shoal/registry-client';
import type { BlobTasks } from './blob-tasks.js';
import { resolvePreheatImage } from './preheat-image.js';
import { PreheatBusyError, PreheatJobUnknownError, PreheatNodeUnknownError, PreheatUnsupportedError } from './errors.js';
import type { PeerLinks, PrefetchedMessage, PrefetchProgressMessage, RuntimePulledMessage } from './peer-links.js';
import type { PeerTable } from './peer-table.js';

/** Jobs remembered at once; the oldest finished ones are forgotten first. Jobs. */
export const DEFAULT_MAX_PREHEAT_JOBS = 100;
/** Blobs of one job started at once (BlobTasks also caps back-to-source fetches globally). Blobs. */
export const DEFAULT_PREHEAT_BLOB_CONCURRENCY = 4;
/**
 * A node asked to prefetch that sends no answer for this long (none at all, or
 * no further one) is marked failed for the blobs it has not answered. Milliseconds: 10 min.
 */
export const DEFAULT_PREHEAT_NODE_TIMEOUT_MS = 10 * 60_000;
/** Blob failures a node's error names at most (the count says how many in all). */
const MAX_NODE_ERRORS_LISTED = 4;

// --- jobs ----------------------------------------------------------------------

export interface PreheatComponents {
  log: Logger;
  store: PieceStoreApi;
  registry: RegistryClientApi;
  /** The same BlobTasks peers go through, so a blob preheated and pulled at once is fetched once. */
  tasks: BlobTasks;
  /** @default systemClock */
  clock?: Clock;
  /** Live peers and their sockets, for preheat into nodes; without them a request naming nodes is refused. */
  peers?: PeerTable | undefined;
  links?: PeerLinks | undefined;
}

export interface PreheatInit {
  /** @default DEFAULT_MAX_PREHEAT_JOBS */
  maxJobs?: number | undefined;
  /** @default DEFAULT_PREHEAT_BLOB_CONCURRENCY */
  blobConcurrency?: number | undefined;
  /** @default DEFAULT_PREHEAT_NODE_TIMEOUT_MS */
  nodeTimeoutMs?: number | undefined;
}

export interface PreheatStart {
  /** The reference as the client wrote it (for status and logs). */
  imageText: string;
  image: ImageReference;
  /** Undefined: every platform of an index. */
  platforms: readonly Platform[] | undefined;
  /** Also fill these nodes' stores (`all`: every live peer now). */
  nodes?: PreheatNodes | undefined;
  /** With nodes: then have each node's container runtime pull the image through CRI, with this policy. */
  runtimePull?: ImagePullPolicy | undefined;
}

/** The name containerd is asked to pull: the reference with its registry spelled out (`docker.io/library/alpine:3`). */
export function runtimeImageName(image: ImageReference): string {
  return `${image.registryName}/${image.repository}${image.tag === undefined ? '' : `:${image.tag}`}${image.digest === undefined ? '' : `@${image.digest}`}`;
}

/** `Basic <base64>` → the base64 part (CRI AuthConfig.auth); other schemes are not passed to the runtime. */
function basicAuthOf(authorization: string | undefined): string | undefined {
  const m = authorization === undefined ? null : /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(authorization.trim());
  return m?.[1];
}

/** Per blob of a node's fill (index in the job's blobs); 0: not asked (the supernode's cache lacks it). */
const BLOB_ASKED = 1;
const BLOB_ANSWERED = 2;

interface NodeEntry {
  readonly name: string;
  readonly peerId: string;
  state: PreheatBlobState;
  blobsDone: number;
  /** Blobs the node answered as failed. */
  blobsFailed: number;
  blobsTotal: number;
  /** Bytes of the asked blobs verified in the node's store (its progress reports and answers). */
  bytesDone: number;
  bytesTotal: number;
  /** The runtime step, when the job asked for one. */
  runtime?: 'waiting' | 'pulling' | RuntimePullOutcome;
  /** The first few failures, then the count. */
  errors: string[];
  reason?: string;
  /** Per blob of the job; held only while the node is running. */
  blobStates?: Uint8Array;
  timer?: NodeJS.Timeout;
}

interface BlobEntry {
  readonly digest: Digest;
  readonly sizeBytes: number;
  state: PreheatBlobState;
  error?: string;
}

interface Job {
  readonly id: string;
  readonly image: string;
  readonly platforms: readonly string[];
  readonly blobs: readonly BlobEntry[];
  /** Blobs of the image larger than the swarm carries: not warmed (a pull takes them from the registry). With `blobs`, at most MAX_PREHEAT_BLOBS. */
  readonly tooLarge: ReadonlyArray<{ digest: Digest; sizeBytes: number }>;
  readonly startedAtMs: number;
  readonly abort: AbortController;
  state: PreheatJobState;
  finishedAtMs?: number;
  message?: string;
  /** Nodes to fill, chosen at request time; undefined when none were asked for. */
  readonly nodes?: NodeEntry[];
  /** Digest → index in blobs, while nodes are being filled. */
  blobIndex?: Map<Digest, number>;
  /** Called when a node finishes, to see whether all have. */
  nodeSettled?: () => void;
  /** After a node's store holds every blob: what its runtime is asked to pull, and how. */
  readonly runtime?: { policy: ImagePullPolicy; image: string; auth: string | undefined };
}

/**
 * Preheat jobs: resolve an image to its blobs (for an index, those of the
 * chosen platforms), then warm the supernode's cache with each of them through
 * BlobTasks, a few at a time. Jobs live in memory only; at most `maxJobs` are
 * remembered, the oldest finished ones forgotten first.
 */
export class PreheatJobs {
  private readonly log: Logger;
  private readonly store: PieceStoreApi;
  private readonly registry: RegistryClientApi;
  private readonly tasks: BlobTasks;
  private readonly clock: Clock;
  private readonly maxJobs: number;
  private readonly blobConcurrency: number;
  private readonly nodeTimeoutMs: number;
  private readonly peers: PeerTable | undefined;
  private readonly links: PeerLinks | undefined;
  /** In start order, bounded by maxJobs. */
  private readonly jobs = new Map<string, Job>();
  /** Nodes being filled, by peer id: bounded by running jobs × their nodes. */
  private readonly filling = new Map<string, Set<{ job: Job; node: NodeEntry }>>();

  constructor(components: PreheatComponents, init: PreheatInit = {}) {
    this.log = components.log.child({ module: 'preheat' });
    this.store = components.store;
    this.registry = components.registry;
    this.tasks = components.tasks;
    this.clock = components.clock ?? systemClock;
    this.maxJobs = Math.max(1, init.maxJobs ?? DEFAULT_MAX_PREHEAT_JOBS);
    this.blobConcurrency = Math.max(1, init.blobConcurrency ?? DEFAULT_PREHEAT_BLOB_CONCURRENCY);
    this.nodeTimeoutMs = Math.max(1, init.nodeTimeoutMs ?? DEFAULT_PREHEAT_NODE_TIMEOUT_MS);
    this.peers = components.peers;
    this.links = components.links;
    this.links?.listen({
      prefetched: (peerId, message) => this.onPrefetched(peerId, message),
      progress: (peerId, message) => this.onProgress(peerId, message),
      runtimePulled: (peerId, message) => this.onRuntimePulled(peerId, message),
      disconnected: (peerId) => this.onDisconnected(peerId),
    });
  }

  /**
   * Resolves the image (errors such as an unknown tag or platform reject here,
   * before any job exists), then starts warming its blobs and returns the job.
   * `authorization` is the client's registry credential, used for every
   * registry request of the job and never logged.
   */
  async start(request: PreheatStart, authorization: string | undefined, options: { signal?: AbortSignal } = {}): Promise<PreheatJob> {
    // Unknown node names fail the request before the registry is asked anything.
    const nodes = request.nodes === undefined ? undefined : this.selectNodes(request.nodes);
    const resolved = await resolvePreheatImage(this.registry, request, authorization, options.signal);
    this.makeRoom();
    const job: Job = {
      id: randomUUID(),
      image: request.imageText,
      platforms: resolved.platforms,
      blobs: resolved.blobs.map((b) => ({ digest: b.digest, sizeBytes: b.sizeBytes, state: 'pending' })),
      tooLarge: resolved.tooLarge,
      startedAtMs: this.clock.now(),
      abort: new AbortController(),
      state: 'running',
      ...(nodes === undefined
        ? {}
        : {
            nodes: nodes.map((n): NodeEntry => ({
              name: n.name,
              peerId: n.peerId,
              state: 'pending',
              blobsDone: 0,
              blobsFailed: 0,
              blobsTotal: 0,
              bytesDone: 0,
              bytesTotal: 0,
              errors: [],
              ...(request.runtimePull === undefined ? {} : { runtime: 'waiting' as const }),
            })),
          }),
      ...(nodes === undefined || request.runtimePull === undefined ? {} : { runtime: { policy: request.runtimePull, image: runtimeImageName(request.image), auth: basicAuthOf(authorization) } }),
    };
    this.jobs.set(job.id, job);
    const log = this.log.child({ job: job.id, image: job.image });
    log.info({ platforms: job.platforms, blobs: job.blobs.length, bytesTotal: sumBytes(job.blobs), nodes: job.nodes?.length }, 'preheat started');
    if (job.tooLarge.length > 0) log.warn({ count: job.tooLarge.length, blobs: job.tooLarge.slice(0, 10), maxBytes: MAX_BLOB_SIZE_BYTES }, 'blobs larger than the swarm carries are not preheated; pulls take them from the registry');
    this.run(job, request.image, authorization, log).catch((err: unknown) => {
      for (const node of job.nodes ?? []) if (node.state === 'pending' || node.state === 'running') this.failNode(job, node, 'preheat stopped');
      job.state = 'failed';
      job.message = `preheat stopped: ${err instanceof Error ? err.message : String(err)}`;
      log.error({ err }, 'preheat job stopped');
    });
    return this.status(job);
  }

  get(id: string): PreheatJob {
    const job = this.jobs.get(id);
    if (job === undefined) throw new PreheatJobUnknownError(id);
    return this.status(job);
  }

  /**
   * Stops waiting on a running job (the ImagePullJob controller's attempt
   * timed out): its nodes not yet filled fail with `reason`. Unknown or
   * finished jobs are left alone.
   */
  cancel(id: string, reason: string): void {
    const job = this.jobs.get(id);
    if (job !== undefined && job.state === 'running') job.abort.abort(new Error(reason));
  }

  /** Jobs remembered now (running and finished). */
  get size(): number {
    return this.jobs.size;
  }

  /** The `limit` most recently started jobs, newest first (for the status API). */
  recent(limit: number): PreheatJob[] {
    const out: PreheatJob[] = [];
    const jobs = [...this.jobs.values()];
    for (let i = jobs.length - 1; i >= 0 && out.length < limit; i--) out.push(this.status(jobs[i] as Job));
    return out;
  }

  /** Stops waiting on every running job (shutdown); the downloads themselves belong to BlobTasks. */
  close(): void {
    for (const job of this.jobs.values()) job.abort.abort(new Error('supernode shutting down'));
  }

  private makeRoom(): void {
    if (this.jobs.size < this.maxJobs) return;
    for (const [id, job] of this.jobs) {
      if (job.state !== 'running') this.jobs.delete(id);
      if (this.jobs.size < this.maxJobs) return;
    }
    throw new PreheatBusyError(this.jobs.size);
  }

  private async run(job: Job, image: ImageReference, authorization: string | undefined, log: Logger): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < job.blobs.length) {
        const blob = job.blobs[next++] as BlobEntry;
        await this.warm(job, blob, image, authorization, log);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.blobConcurrency, job.blobs.length) }, worker));
    const failed = job.blobs.filter((b) => b.state === 'failed').length;
    if (job.nodes !== undefined) await this.fillNodes(job, image, log);
    const failedNodes = job.nodes?.filter((n) => n.state === 'failed') ?? [];
    job.state = failed === 0 && failedNodes.length === 0 ? 'done' : 'failed';
    job.finishedAtMs = this.clock.now();
    const parts = [failed === 0 ? `${job.blobs.length} blobs in the supernode's cache` : `${failed} of ${job.blobs.length} blobs failed`];
    if (job.tooLarge.length > 0) parts.push(tooLargeText(job.tooLarge));
    if (job.nodes !== undefined) {
      parts.push(failedNodes.length === 0 ? `${job.nodes.length} node${job.nodes.length === 1 ? '' : 's'} filled` : `${failedNodes.length} of ${job.nodes.length} nodes failed: ${failedNodes.slice(0, 10).map((n) => n.name).join(', ')}`);
    }
    job.message = parts.join('; ').slice(0, 2000);
    const durationMs = job.finishedAtMs - job.startedAtMs;
    if (job.state === 'done') log.info({ blobs: job.blobs.length, bytes: sumBytes(job.blobs), nodes: job.nodes?.length, durationMs }, 'preheat done');
    else log.warn({ blobs: job.blobs.length, failed, failedNodes: failedNodes.length, durationMs }, 'preheat failed');
  }

  /**
   * The live peers a request names (by node name; a peer registered without
   * one goes by its peer id). `all`: every live peer now. A name several
   * peers share goes to the one seen last.
   */
  private selectNodes(wanted: PreheatNodes): Array<{ name: string; peerId: string }> {
    if (this.peers === undefined || this.links === undefined) throw new PreheatUnsupportedError('this supernode cannot reach nodes: preheat without nodes');
    const byName = new Map<string, string>();
    // list() is ordered stalest first: a later peer with the same name wins.
    for (const p of this.peers.list()) if (this.links.has(p.peerId)) byName.set(p.nodeName ?? p.peerId, p.peerId);
    if (wanted === 'all') {
      if (byName.size > MAX_PREHEAT_NODES) throw new PreheatUnsupportedError(`${byName.size} nodes are registered, at most ${MAX_PREHEAT_NODES} per preheat job (name them with --nodes)`);
      return [...byName].map(([name, peerId]) => ({ name, peerId }));
    }
    const unknown = wanted.filter((name) => !byName.has(name));
    if (unknown.length > 0) throw new PreheatNodeUnknownError(unknown, [...byName.keys()].sort());
    return [...new Set(wanted)].map((name) => ({ name, peerId: byName.get(name) as string }));
  }

  /**
   * Sends each node the blobs the supernode's cache now holds (in frames of
   * MAX_PREFETCH_BLOBS_PER_FRAME), then waits until every node has answered
   * every blob, disconnected, or gone silent for nodeTimeoutMs.
   */
  private async fillNodes(job: Job, image: ImageReference, log: Logger): Promise<void> {
    const nodes = job.nodes ?? [];
    const ready: PrefetchBlob[] = [];
    const indexes: number[] = [];
    job.blobs.forEach((b, i) => {
      if (b.state !== 'done') return;
      ready.push({ digest: b.digest, sizeBytes: b.sizeBytes, registry: image.registry, repository: image.repository });
      indexes.push(i);
    });
    job.blobIndex = new Map(job.blobs.map((b, i) => [b.digest, i]));
    let check = (): void => undefined;
    const settled = new Promise<void>((resolve) => {
      check = () => {
        if (nodes.every((n) => n.state === 'done' || n.state === 'failed')) resolve();
      };
    });
    job.nodeSettled = check;
    const onAbort = (): void => {
      for (const node of nodes) if (node.state === 'pending' || node.state === 'running') this.failNode(job, node, `preheat stopped: ${String(job.abort.signal.reason)}`);
    };
    job.abort.signal.addEventListener('abort', onAbort, { once: true });
    const readyBytes = ready.reduce((sum, b) => sum + b.sizeBytes, 0);
    for (const node of nodes) {
      node.blobsTotal = ready.length;
      node.bytesTotal = readyBytes;
      if (ready.length === 0) {
        this.failNode(job, node, "no blob of the image is in the supernode's cache to fetch");
        continue;
      }
      node.state = 'running';
      node.blobStates = new Uint8Array(job.blobs.length);
      for (const i of indexes) node.blobStates[i] = BLOB_ASKED;
      this.track(node.peerId, job, node);
      this.armNodeTimer(job, node);
      for (let from = 0; from < ready.length && node.state === 'running'; from += MAX_PREFETCH_BLOBS_PER_FRAME) {
        const sent = this.links?.send(node.peerId, { type: 'prefetch', job: job.id, blobs: ready.slice(from, from + MAX_PREFETCH_BLOBS_PER_FRAME) }) ?? false;
        if (!sent) this.failNode(job, node, 'the node is no longer connected');
      }
      log.info({ node: node.name, peerId: node.peerId, blobs: ready.length }, 'prefetch sent to node');
    }
    check();
    try {
      await settled;
    } finally {
      job.abort.signal.removeEventListener('abort', onAbort);
      delete job.blobIndex;
      delete job.nodeSettled;
    }
  }

  private track(peerId: string, job: Job, node: NodeEntry): void {
    let set = this.filling.get(peerId);
    if (set === undefined) {
      set = new Set();
      this.filling.set(peerId, set);
    }
    set.add({ job, node });
  }

  private untrack(peerId: string, node: NodeEntry): void {
    const set = this.filling.get(peerId);
    if (set === undefined) return;
    for (const entry of set) if (entry.node === node) set.delete(entry);
    if (set.size === 0) this.filling.delete(peerId);
  }

  private armNodeTimer(job: Job, node: NodeEntry): void {
    clearTimeout(node.timer);
    node.timer = setTimeout(() => this.failNode(job, node, `the node sent no answer for ${this.nodeTimeoutMs} ms`), this.nodeTimeoutMs);
    node.timer.unref();
  }

  private onPrefetched(peerId: string, message: PrefetchedMessage): void {
    for (const { job, node } of this.filling.get(peerId) ?? []) {
      if (job.id !== message.job || node.state !== 'running') continue;
      const index = job.blobIndex?.get(message.digest as Digest);
      if (index === undefined || node.blobStates?.[index] !== BLOB_ASKED) return; // not asked, or answered already
      node.blobStates[index] = BLOB_ANSWERED;
      if (message.ok) {
        node.blobsDone++;
        node.bytesDone = Math.max(node.bytesDone, this.answeredBytes(job, node));
      } else {
        node.blobsFailed++;
        if (node.errors.length < MAX_NODE_ERRORS_LISTED) node.errors.push(`${message.digest}: ${(message.error ?? 'failed').slice(0, 300)}`);
        this.log.warn({ job: job.id, node: node.name, digest: message.digest, err: message.error }, 'a node could not prefetch a blob');
      }
      if (node.blobsDone + node.blobsFailed < node.blobsTotal) this.armNodeTimer(job, node);
      else if (node.blobsFailed > 0) this.finishNode(job, node, 'failed');
      else if (job.runtime === undefined) this.finishNode(job, node, 'done');
      else this.startRuntimePull(job, node);
      return;
    }
  }

  /** Bytes of the blobs the node answered ok. */
  private answeredBytes(job: Job, node: NodeEntry): number {
    let bytes = 0;
    job.blobs.forEach((b, i) => {
      if (node.blobStates?.[i] === BLOB_ANSWERED) bytes += b.sizeBytes;
    });
    return bytes;
  }

  /** Every blob is in the node's store: its runtime pulls the image (through the node's proxy, so from that store). */
  private startRuntimePull(job: Job, node: NodeEntry): void {
    const runtime = job.runtime;
    if (runtime === undefined) return;
    node.bytesDone = node.bytesTotal;
    node.runtime = 'pulling';
    const sent = this.links?.send(node.peerId, { type: 'runtimePull', job: job.id, image: runtime.image, policy: runtime.policy, ...(runtime.auth === undefined ? {} : { auth: runtime.auth }) }) ?? false;
    if (!sent) {
      this.failNode(job, node, 'the node is no longer connected');
      return;
    }
    this.armNodeTimer(job, node);
  }

  private onProgress(peerId: string, message: PrefetchProgressMessage): void {
    for (const { job, node } of this.filling.get(peerId) ?? []) {
      if (job.id !== message.job || node.state !== 'running' || node.runtime === 'pulling') continue;
      if (message.bytesDone > node.bytesDone) {
        node.bytesDone = Math.min(node.bytesTotal, message.bytesDone);
        // Bytes arriving are an answer: a slow link that keeps moving is not silent.
        this.armNodeTimer(job, node);
      }
      return;
    }
  }

  private onRuntimePulled(peerId: string, message: RuntimePulledMessage): void {
    for (const { job, node } of this.filling.get(peerId) ?? []) {
      if (job.id !== message.job || node.state !== 'running' || node.runtime !== 'pulling') continue;
      node.runtime = message.outcome;
      const log = { job: job.id, node: node.name, outcome: message.outcome, imageRef: message.imageRef, durationMs: message.durationMs };
      if (message.outcome === 'failed') {
        node.reason = `the container runtime could not pull the image: ${message.error ?? 'no reason given'}`;
        this.log.warn({ ...log, err: message.error }, 'a node\'s runtime pull failed');
        this.finishNode(job, node, 'failed');
        return;
      }
      // `unavailable`: the store is filled, the runtime was not reached; the node says why.
      if (message.outcome === 'unavailable') node.reason = message.error ?? 'no container runtime on the node';
      this.log.info(log, message.outcome === 'unavailable' ? 'node filled; no runtime to pull into' : 'node filled and image in its runtime');
      this.finishNode(job, node, 'done');
      return;
    }
  }

  private onDisconnected(peerId: string): void {
    for (const { job, node } of [...(this.filling.get(peerId) ?? [])]) this.failNode(job, node, 'the node disconnected before it had every blob');
  }

  /** The node's unanswered blobs count as failed, for `reason`. */
  private failNode(job: Job, node: NodeEntry, reason: string): void {
    if (node.state === 'done' || node.state === 'failed') return;
    node.reason = reason;
    this.log.warn({ job: job.id, node: node.name, reason, blobsDone: node.blobsDone, blobsTotal: node.blobsTotal }, 'preheat of a node failed');
    this.finishNode(job, node, 'failed');
  }

  private finishNode(job: Job, node: NodeEntry, state: 'done' | 'failed'): void {
    node.state = state;
    clearTimeout(node.timer);
    delete node.timer;
    delete node.blobStates;
    this.untrack(node.peerId, node);
    job.nodeSettled?.();
  }

  /** One blob: start (or join) its back-to-source download, then wait until the cache holds it whole and verified. */
  private async warm(job: Job, blob: BlobEntry, image: ImageReference, authorization: string | undefined, log: Logger): Promise<void> {
    const { signal } = job.abort;
    if (signal.aborted) {
      fail(blob, signal.reason);
      return;
    }
    blob.state = 'running';
    try {
      const info = await this.tasks.ensure({ digest: blob.digest, registry: image.registry, repository: image.repository, sizeBytes: blob.sizeBytes }, authorization);
      if (!info.complete) await this.store.waitForComplete(blob.digest, { signal });
      blob.state = 'done';
    } catch (err) {
      fail(blob, signal.aborted ? signal.reason : err);
      log.warn({ digest: blob.digest, err: blob.error }, 'preheat of a blob failed');
    }
  }

  private status(job: Job): PreheatJob {
    let bytesDone = 0;
    for (const b of job.blobs) bytesDone += this.bytesDone(b);
    const out: PreheatJob = {
      id: job.id,
      image: job.image,
      platforms: [...job.platforms],
      state: job.state,
      blobs: job.blobs.map((b) => (b.error === undefined ? { digest: b.digest, sizeBytes: b.sizeBytes, state: b.state } : { digest: b.digest, sizeBytes: b.sizeBytes, state: b.state, error: b.error })),
      bytesDone,
      bytesTotal: sumBytes(job.blobs),
      startedAt: new Date(job.startedAtMs).toISOString(),
    };
    if (job.finishedAtMs !== undefined) out.finishedAt = new Date(job.finishedAtMs).toISOString();
    if (job.message !== undefined) out.message = job.message;
    if (job.tooLarge.length > 0) out.tooLarge = job.tooLarge.map((b) => ({ digest: b.digest, sizeBytes: b.sizeBytes }));
    if (job.nodes !== undefined) out.nodes = job.nodes.map(nodeStatus);
    return out;
  }

  /** Verified bytes of a blob in the cache: whole once done, verified pieces while it streams in. */
  private bytesDone(blob: BlobEntry): number {
    if (blob.state === 'done') return blob.sizeBytes;
    if (blob.state !== 'running') return 0;
    const record = this.store.get(blob.digest);
    if (record === undefined) return 0;
    if (record.complete) return blob.sizeBytes;
    return Math.min(blob.sizeBytes, record.verifiedCount * record.layout.pieceSizeBytes);
  }
}

function nodeStatus(node: NodeEntry): PreheatNodeState {
  const out: PreheatNodeState = { name: node.name, state: node.state, blobsDone: node.blobsDone, blobsTotal: node.blobsTotal, bytesDone: node.bytesDone, bytesTotal: node.bytesTotal };
  if (node.runtime !== undefined) out.runtime = node.runtime;
  const parts: string[] = [];
  if (node.reason !== undefined) parts.push(node.reason);
  if (node.errors.length > 0) {
    const n = node.blobsFailed;
    parts.push(`${n} blob${n === 1 ? '' : 's'} failed: ${node.errors.join('; ')}${n > node.errors.length ? '; ...' : ''}`);
  }
  if (parts.length > 0) out.error = parts.join('; ').slice(0, 2000);
  return out;
}

function fail(blob: BlobEntry, err: unknown): void {
  blob.state = 'failed';
  blob.error = (err instanceof Error ? err.message : String(err)).slice(0, 2000);
}

function sumBytes(blobs: readonly BlobEntry[]): number {
  return blobs.reduce((sum, b) => sum + b.sizeBytes, 0);
}

/** A job message's note on blobs left out for their size (preheat jobs and ImagePullJob status). */
export function tooLargeText(blobs: ReadonlyArray<{ digest: string; sizeBytes: number }>): string {
  const listed = blobs.slice(0, 3).map((b) => `${b.digest} (${b.sizeBytes} bytes)`);
  const more = blobs.length > 3 ? ` and ${blobs.length - 3} more` : '';
  const limit = `${MAX_BLOB_SIZE_BYTES / 1024 ** 3} GiB`;
  return `${blobs.length} blob${blobs.length === 1 ? '' : 's'} larger than the swarm carries (${limit}) not preheated; pulls take ${blobs.length === 1 ? 'it' : 'them'} from the registry: ${listed.join(', ')}${more}`;
}
