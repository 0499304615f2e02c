/**
 * One ImagePullJob from start to completion: validate the spec, select its
 * nodes, fill each through a preheat job (`parallelism` at a time, retried
 * with backoff), write progress to the status subresource and Events, and
 * delete the job after its TTL. The controller (controller.ts) lists and
 * watches jobs and starts one runner per job and generation.
 */
import { pause, withDeadline, type Logger, type PreheatJob } from '@shoal/core';
import { InvalidImagePullJobError } from '../errors.js';
import { tooLargeText, type PreheatStart } from '../preheat.js';
import { authorizationFromDockerConfig, DOCKER_CONFIG_JSON_TYPE } from './credentials.js';
import { statusCodeOf, type ImagePullJobObject, type ImagePullJobStatus, type JobEvent, type KubeAccess } from './kube.js';
import { labelSelectorQuery, nodesOfActivePods, selectNodes, type KubeNode } from './select.js';
import { parseImagePullJobSpec, type ImagePullJobSpec, type JobImage, type JobKind } from './spec.js';

/** Event reasons on a job, one per node's outcome (OpenKruise's names). */
export const EVENT_PULL_SUCCEEDED = 'PullImageSucceed';
export const EVENT_PULL_FAILED = 'PullImageFailed';
/** The node's store holds the image but the node has no container runtime socket: nothing to pull into. */
export const EVENT_STORE_ONLY = 'PullImageStoreOnly';
/** Once per job: the image has blobs larger than the swarm carries; they are not warmed, and containerd takes them from the registry. */
export const EVENT_TOO_LARGE = 'BlobTooLargeForSwarm';
/** Events one job writes at most (one per node outcome; a `Never` job with churning nodes stops writing beyond this). */
const MAX_EVENTS_PER_JOB = 2_000;
/** Longest wait between a node's attempts (DEFAULT_RETRY_DELAY_MS doubles up to it). Milliseconds: 5 min. */
const MAX_RETRY_DELAY_MS = 5 * 60_000;
/** failedNodes listed in status at most (status.failed has the count). */
const MAX_FAILED_NODES_LISTED = 100;
/** Bytes of status.message at most. */
const MAX_MESSAGE_CHARS = 2_000;
/** Blobs listed in status.tooLarge at most (one image rarely has more than one such layer). */
export const MAX_TOO_LARGE_LISTED = 10;

/** The part of PreheatJobs the controller drives. */
export interface PreheatStarter {
  start(request: PreheatStart, authorization: string | undefined, options?: { signal?: AbortSignal }): Promise<PreheatJob>;
  get(id: string): PreheatJob;
  cancel?(id: string, reason: string): void;
}

/** A followed ImagePullJob as the status API shows it. */
export interface ImagePullJobSummary {
  namespace: string;
  name: string;
  /** spec.image, when it is a string (the spec is validated by the runner). */
  image?: string;
  status: ImagePullJobStatus;
}

type NodeState = 'pending' | 'active' | 'succeeded' | 'failed';

interface NodeEntry {
  state: NodeState;
  reason?: string | undefined;
  /** Set when the node failed only for lack of a peer: a `Never` job tries again once one registers. */
  noPeer?: boolean;
  /** While active: filling the store, or containerd pulling. */
  phase?: 'filling' | 'pulling';
  /** Bytes in the node's store of images finished in this attempt, plus the current image's. */
  bytesDone: number;
  bytesTotal: number;
  /** Succeeded with the image in Shoal's store only: the node has no container runtime socket. */
  storeOnly?: string;
}

/** How one attempt on one node ended. */
type AttemptOutcome = { ok: true; detail: string; storeOnly?: string } | { ok: false; reason: string; permanent?: boolean };

/** A counting semaphore: node fills across every job. */
export class Slots {
  private free: number;
  private readonly waiters: Array<() => void> = [];
  constructor(size: number) {
    this.free = size;
  }
  async acquire(signal: AbortSignal): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.waiters.indexOf(grant);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      const grant = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(grant);
    });
  }
  release(): void {
    const next = this.waiters.shift();
    if (next !== undefined) next();
    else this.free++;
  }
}


export function errorText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).slice(0, 500);
}

/** What every runner shares, from the controller. */
export interface RunnerDeps {
  kube: KubeAccess;
  preheat: PreheatStarter;
  peerNodeNames: () => ReadonlySet<string>;
  slots: Slots;
  pollMs: number;
  resyncMs: number;
  retryDelayMs: number;
}

/** One ImagePullJob at one generation, from start to completion (and its TTL). */
export class JobRunner {
  readonly uid: string;
  readonly generation: number;
  readonly kind: JobKind;
  private readonly job: ImagePullJobObject;
  private eventsWritten = 0;
  private readonly namespace: string;
  private readonly name: string;
  private readonly abort = new AbortController();
  /** Aborted with `abort`, or alone at activeDeadlineSeconds (the TTL still runs then). */
  private readonly fills = new AbortController();
  private readonly nodes = new Map<string, NodeEntry>();
  private readonly initial: ImagePullJobStatus;
  /** Wakes the main loop (a node settled, or a slot freed). */
  private wake: () => void = () => undefined;
  private lastPatched = '';
  private message = '';
  /** Blobs of the job's images too large for the swarm (digest → size), as the preheats resolved them; at most MAX_TOO_LARGE_LISTED. */
  private readonly tooLarge = new Map<string, number>();

  constructor(
    private readonly deps: RunnerDeps,
    job: ImagePullJobObject,
    private readonly log: Logger,
  ) {
    this.uid = job.metadata.uid;
    this.generation = job.metadata.generation;
    this.kind = job.kind;
    this.job = job;
    this.namespace = job.metadata.namespace;
    this.name = job.metadata.name;
    this.initial = job.status;
    this.spec = job.spec;
  }

  private readonly spec: unknown;

  summary(): ImagePullJobSummary {
    const image = (this.spec as { image?: unknown } | null)?.image;
    return {
      namespace: this.namespace,
      name: this.name,
      ...(typeof image === 'string' ? { image } : {}),
      status: this.lastPatched === '' ? this.initial : (JSON.parse(this.lastPatched) as ImagePullJobStatus),
    };
  }

  cancel(): void {
    this.abort.abort(new Error('ImagePullJob deleted or changed'));
    this.fills.abort(new Error('ImagePullJob deleted or changed'));
    this.wake();
  }

  async run(): Promise<void> {
    let spec: ImagePullJobSpec;
    try {
      spec = parseImagePullJobSpec(this.spec, this.kind);
    } catch (err) {
      const message = err instanceof InvalidImagePullJobError ? err.message : `invalid spec: ${errorText(err)}`;
      this.log.warn({ message }, 'ImagePullJob has an invalid spec: not acted on');
      await this.patch({ desired: 0, active: 0, succeeded: 0, failed: 0, failedNodes: [], message: message.slice(0, MAX_MESSAGE_CHARS) });
      return;
    }
    const { deps } = this;
    const signal = this.abort.signal;
    // Finished before (e.g. by another supernode process): only its TTL is left to honour.
    if (spec.completionPolicy.type === 'Always' && this.initial.completionTime !== undefined) {
      await this.expire(spec, Date.parse(this.initial.completionTime));
      return;
    }
    const startMs = this.initial.startTime !== undefined && Number.isFinite(Date.parse(this.initial.startTime)) ? Date.parse(this.initial.startTime) : Date.now();
    const startTime = new Date(startMs).toISOString();
    const authorization = await this.credentials(spec);
    if (signal.aborted) return;

    const deadlineMs = spec.completionPolicy.activeDeadlineSeconds === undefined ? undefined : startMs + spec.completionPolicy.activeDeadlineSeconds * 1000;
    let active = 0;
    let selectedOnce = false;
    let nextResyncMs = 0;
    this.log.info({ images: spec.images.map((i) => i.text), parallelism: spec.parallelism, policy: spec.completionPolicy.type, imagePullPolicy: spec.imagePullPolicy }, 'ImagePullJob started');
    while (!signal.aborted) {
      const now = Date.now();
      if (now >= nextResyncMs && (spec.completionPolicy.type === 'Never' || !selectedOnce)) {
        try {
          await this.select(spec, spec.completionPolicy.type === 'Never');
          selectedOnce = true;
        } catch (err) {
          this.message = `cannot list nodes: ${errorText(err)}`;
          this.log.warn({ err: this.message }, 'ImagePullJob could not list nodes');
        }
        nextResyncMs = now + deps.resyncMs;
        if (signal.aborted) return;
      }
      if (deadlineMs !== undefined && now >= deadlineMs) {
        for (const [name, entry] of this.nodes) {
          if (entry.state === 'pending' || entry.state === 'active') {
            const reason = `activeDeadlineSeconds (${spec.completionPolicy.activeDeadlineSeconds}) exceeded`;
            this.nodes.set(name, { state: 'failed', reason, bytesDone: entry.bytesDone, bytesTotal: entry.bytesTotal });
            void this.event({ type: 'Warning', reason: EVENT_PULL_FAILED, message: `node ${name}: ${reason}` });
          }
        }
        this.fills.abort(new Error('activeDeadlineSeconds exceeded'));
        await this.finish(spec, startTime, 'deadline exceeded');
        return;
      }
      // Start fills up to parallelism (0 pauses the job).
      for (const [name, entry] of this.nodes) {
        if (active >= spec.parallelism) break;
        if (entry.state !== 'pending') continue;
        entry.state = 'active';
        active++;
        void this.fill(spec, name, entry, authorization)
          .catch((err: unknown) => {
            // fill settles its own failures; anything else must not become an unhandled rejection.
            entry.state = 'failed';
            entry.reason = errorText(err);
            this.log.error({ node: name, err: entry.reason }, 'ImagePullJob node fill failed');
          })
          .finally(() => {
            active--;
            this.wake();
          });
      }
      const counts = this.counts();
      if (selectedOnce && spec.completionPolicy.type === 'Always' && counts.pending === 0 && counts.active === 0) {
        await this.finish(spec, startTime, undefined);
        return;
      }
      await this.patch(this.status(startTime, undefined));
      const untilResync = Math.max(1, nextResyncMs - Date.now());
      const untilDeadline = deadlineMs === undefined ? Infinity : Math.max(1, deadlineMs - Date.now());
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(untilResync, untilDeadline, 2_147_483_647));
        timer.unref();
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = () => undefined;
    }
  }

  /** Adds newly selected nodes; with `again`, nodes that failed for lack of a peer get another chance once one registered. */
  private async select(spec: ImagePullJobSpec, again: boolean): Promise<void> {
    const { deps } = this;
    const kubeNodes: KubeNode[] = spec.selector.kind === 'labels' ? await deps.kube.listNodes() : [];
    const podNodes = spec.selector.kind === 'pods' ? nodesOfActivePods(await deps.kube.listPods(this.namespace, labelSelectorQuery(spec.selector.matchLabels, spec.selector.matchExpressions))) : [];
    const selection = selectNodes(spec.selector, kubeNodes, deps.peerNodeNames(), podNodes);
    for (const name of selection.withPeer) {
      const entry = this.nodes.get(name);
      if (entry === undefined || (again && entry.noPeer === true)) this.nodes.set(name, { state: 'pending', bytesDone: 0, bytesTotal: 0 });
    }
    for (const name of selection.withoutPeer) {
      if (!this.nodes.has(name)) {
        const reason = 'no Shoal peer is registered with this node name (is the Shoal node agent running there with --node-name?)';
        this.nodes.set(name, { state: 'failed', noPeer: true, reason, bytesDone: 0, bytesTotal: 0 });
        if (spec.completionPolicy.type === 'Always') void this.event({ type: 'Warning', reason: EVENT_PULL_FAILED, message: `node ${name}: ${reason}` });
      }
    }
    if (selection.truncated) this.message = `more nodes match than one job may fill: only the first ${this.nodes.size} are`;
  }

  /** One node: up to 1 + backoffLimit attempts; an attempt pulls every image of the job in turn. */
  private async fill(spec: ImagePullJobSpec, name: string, entry: NodeEntry, authorization: string | undefined): Promise<void> {
    const { deps } = this;
    const signal = this.fills.signal;
    let reason = 'not attempted';
    const startedMs = Date.now();
    for (let attempt = 0; attempt <= spec.backoffLimit && !signal.aborted; attempt++) {
      if (attempt > 0) await pause(Math.min(deps.retryDelayMs * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS), signal);
      if (signal.aborted) break;
      try {
        await deps.slots.acquire(signal);
      } catch {
        break;
      }
      let outcome: AttemptOutcome;
      try {
        outcome = await this.attemptImages(spec, name, entry, authorization);
      } finally {
        deps.slots.release();
        delete entry.phase;
      }
      if (outcome.ok) {
        entry.state = 'succeeded';
        delete entry.reason;
        this.log.info({ node: name, attempt: attempt + 1, detail: outcome.detail }, 'ImagePullJob node done');
        if (outcome.storeOnly !== undefined) {
          entry.storeOnly = outcome.storeOnly;
          await this.event({ type: 'Warning', reason: EVENT_STORE_ONLY, message: `node ${name}: ${outcome.storeOnly}` });
          return;
        }
        await this.event({ type: 'Normal', reason: EVENT_PULL_SUCCEEDED, message: `node ${name}: ${outcome.detail} (${((Date.now() - startedMs) / 1000).toFixed(1)} s)` });
        return;
      }
      reason = outcome.reason;
      this.log.warn({ node: name, attempt: attempt + 1, reason }, 'ImagePullJob node attempt failed');
      if (outcome.permanent === true) {
        if (signal.aborted) return;
        entry.state = 'failed';
        entry.reason = reason;
        await this.event({ type: 'Warning', reason: EVENT_PULL_FAILED, message: `node ${name}: ${reason}` });
        return;
      }
    }
    if (signal.aborted) return;
    entry.state = 'failed';
    entry.reason = `${reason} (after ${spec.backoffLimit + 1} attempt${spec.backoffLimit === 0 ? '' : 's'})`;
    await this.event({ type: 'Warning', reason: EVENT_PULL_FAILED, message: `node ${name}: ${entry.reason}` });
  }

  /** Every image of the job on one node, in spec order; the first failure ends the attempt. */
  private async attemptImages(spec: ImagePullJobSpec, name: string, entry: NodeEntry, authorization: string | undefined): Promise<AttemptOutcome> {
    entry.bytesDone = 0;
    let doneBytes = 0;
    const details: string[] = [];
    let storeOnly: string | undefined;
    for (const image of spec.images) {
      const outcome = await this.attempt(spec, image, name, entry, doneBytes, authorization);
      if (!outcome.ok) return spec.images.length === 1 ? outcome : { ...outcome, reason: `${image.text}: ${outcome.reason}` };
      doneBytes = entry.bytesDone;
      storeOnly ??= outcome.storeOnly;
      details.push(spec.images.length === 1 ? outcome.detail : `${image.text} ${outcome.detail}`);
    }
    return { ok: true, detail: details.join('; '), ...(storeOnly === undefined ? {} : { storeOnly }) };
  }

  /**
   * One image on one node: a preheat job that fills the node's store and has
   * its containerd pull the image. Fails when the store gains no byte for
   * stallSeconds, or containerd's pull takes longer than timeoutSeconds.
   */
  private async attempt(spec: ImagePullJobSpec, image: JobImage, name: string, entry: NodeEntry, doneBytes: number, authorization: string | undefined): Promise<AttemptOutcome> {
    const { deps } = this;
    const stop = new AbortController();
    const signal = AbortSignal.any([this.fills.signal, stop.signal]);
    const stalled = `stalled: no byte progress for ${spec.stallSeconds} s`;
    entry.phase = 'filling';
    let job: PreheatJob;
    try {
      // Not cleared: it bounds whatever start() hands the signal to, as a timeout signal would.
      const resolveDeadline = withDeadline(signal, spec.stallSeconds * 1000);
      job = await deps.preheat.start(
        { imageText: image.text, image: image.ref, platforms: spec.platforms, nodes: [name], runtimePull: spec.imagePullPolicy },
        authorization,
        { signal: resolveDeadline.signal },
      );
    } catch (err) {
      return { ok: false, reason: this.fills.signal.aborted ? 'stopped' : errorText(err) };
    }
    await this.noteTooLarge(image.text, job.tooLarge ?? []);
    let progress = -1;
    let progressAtMs = Date.now();
    let pullingSinceMs: number | undefined;
    while (job.state === 'running') {
      const node = job.nodes?.find((n) => n.name === name);
      const nodeBytes = node?.bytesDone ?? 0;
      entry.bytesTotal = Math.max(entry.bytesTotal, doneBytes + (node?.bytesTotal ?? job.bytesTotal));
      entry.bytesDone = doneBytes + nodeBytes;
      const now = Date.now();
      // The supernode's cache filling counts as progress too: the node waits on it.
      const seen = job.bytesDone + nodeBytes;
      if (seen > progress) {
        progress = seen;
        progressAtMs = now;
      }
      if (node?.runtime === 'pulling') {
        entry.phase = 'pulling';
        pullingSinceMs ??= now;
      }
      let why: string | undefined;
      if (pullingSinceMs !== undefined && now - pullingSinceMs >= spec.timeoutSeconds * 1000) why = `containerd's pull took longer than timeoutSeconds (${spec.timeoutSeconds} s)`;
      else if (pullingSinceMs === undefined && now - progressAtMs >= spec.stallSeconds * 1000) why = stalled;
      if (why !== undefined) {
        deps.preheat.cancel?.(job.id, `ImagePullJob attempt failed: ${why}`);
        stop.abort();
        return { ok: false, reason: why };
      }
      await pause(deps.pollMs, signal);
      if (this.fills.signal.aborted) {
        deps.preheat.cancel?.(job.id, 'ImagePullJob stopped');
        return { ok: false, reason: 'stopped' };
      }
      try {
        job = deps.preheat.get(job.id);
      } catch (err) {
        return { ok: false, reason: errorText(err) };
      }
    }
    const node = job.nodes?.find((n) => n.name === name);
    if (node !== undefined) {
      entry.bytesTotal = Math.max(entry.bytesTotal, doneBytes + (node.bytesTotal ?? 0));
      entry.bytesDone = doneBytes + (node.bytesDone ?? 0);
    }
    if (job.state === 'done' && node?.state === 'done') {
      if (node.runtime === 'unavailable') return { ok: true, detail: 'image in the node\'s Shoal store only', storeOnly: node.error ?? 'no container runtime on the node: the image is in its Shoal store only' };
      if (node.runtime === 'present') return { ok: true, detail: 'image already in containerd (IfNotPresent): not pulled' };
      return { ok: true, detail: 'image pulled into containerd' };
    }
    return { ok: false, reason: (node?.error ?? job.message ?? 'preheat failed').slice(0, 500) };
  }

  /**
   * Blobs a preheat left out for being larger than the swarm carries: listed in
   * the status, and told once per job in a Warning Event. The node's pull still
   * succeeds (containerd fetches them from the registry through the proxy), but
   * the registry sends them to every node, which the SRE must be able to see.
   */
  private async noteTooLarge(imageText: string, blobs: ReadonlyArray<{ digest: string; sizeBytes: number }>): Promise<void> {
    const fresh = blobs.filter((b) => !this.tooLarge.has(b.digest));
    if (fresh.length === 0) return;
    const firstNews = this.tooLarge.size === 0;
    for (const b of fresh) if (this.tooLarge.size < MAX_TOO_LARGE_LISTED) this.tooLarge.set(b.digest, b.sizeBytes);
    if (!firstNews) return;
    this.log.warn({ image: imageText, blobs: fresh.slice(0, MAX_TOO_LARGE_LISTED) }, 'ImagePullJob image has blobs larger than the swarm carries: containerd takes them from the registry');
    await this.event({ type: 'Warning', reason: EVENT_TOO_LARGE, message: `${imageText}: ${tooLargeText(fresh)}` });
  }

  /** Records an Event on the job; a failure is logged, never fatal. */
  private async event(event: JobEvent): Promise<void> {
    if (this.eventsWritten >= MAX_EVENTS_PER_JOB) return;
    this.eventsWritten++;
    try {
      await this.deps.kube.createEvent(this.job, event);
    } catch (err) {
      this.log.warn({ err: errorText(err), code: statusCodeOf(err), reason: event.reason }, 'could not record an Event on the ImagePullJob');
    }
  }

  /** The registry credential from the job's pull secrets, if one of them has the image's registry. Never logged. */
  private async credentials(spec: ImagePullJobSpec): Promise<string | undefined> {
    const { deps } = this;
    const problems: string[] = [];
    for (const secretName of spec.pullSecrets) {
      try {
        const secret = await deps.kube.getSecret(this.namespace, secretName);
        if (secret === undefined) problems.push(`pull secret ${secretName} not found`);
        else if (secret.type !== DOCKER_CONFIG_JSON_TYPE) problems.push(`pull secret ${secretName} is not of type ${DOCKER_CONFIG_JSON_TYPE}`);
        else {
          const authorization = authorizationFromDockerConfig(secret.data, spec.image);
          if (authorization !== undefined) return authorization;
        }
      } catch (err) {
        problems.push(`pull secret ${secretName} unusable: ${errorText(err)}`);
      }
    }
    if (problems.length > 0) this.message = `${problems.join('; ')}; pulling without credentials`;
    return undefined;
  }

  private counts(): { pending: number; active: number; succeeded: number; failed: number } {
    const c = { pending: 0, active: 0, succeeded: 0, failed: 0 };
    for (const e of this.nodes.values()) c[e.state]++;
    return c;
  }

  private status(startTime: string, completionTime: string | undefined): ImagePullJobStatus {
    const c = this.counts();
    const failed = [...this.nodes].filter(([, e]) => e.state === 'failed');
    const parts: string[] = [];
    if (this.message !== '') parts.push(this.message);
    if (this.nodes.size === 0) parts.push('no node selected');
    else if (completionTime !== undefined) parts.push(`${c.succeeded} of ${this.nodes.size} nodes filled`);
    else parts.push(`${c.succeeded} of ${this.nodes.size} nodes filled, ${c.active} in progress`);
    const storeOnly = [...this.nodes].filter(([, e]) => e.state === 'succeeded' && e.storeOnly !== undefined);
    if (storeOnly.length > 0) parts.push(`in Shoal's store only (no container runtime): ${storeOnly.slice(0, 5).map(([n]) => n).join(', ')}${storeOnly.length > 5 ? ', ...' : ''}`);
    const tooLarge = [...this.tooLarge].map(([digest, sizeBytes]) => ({ digest, sizeBytes }));
    if (tooLarge.length > 0) parts.push(tooLargeText(tooLarge));
    if (failed.length > 0) parts.push(`failed: ${failed.slice(0, 5).map(([n, e]) => `${n}: ${e.reason ?? 'failed'}`).join('; ')}${failed.length > 5 ? '; ...' : ''}`);
    const phases = { pending: 0, filling: 0, pulling: 0, succeeded: 0, failed: 0, storeOnly: 0 };
    let bytesDone = 0;
    let bytesTotal = 0;
    for (const e of this.nodes.values()) {
      if (e.state === 'active') phases[e.phase === 'pulling' ? 'pulling' : 'filling']++;
      else phases[e.state]++;
      if (e.state === 'succeeded' && e.storeOnly !== undefined) phases.storeOnly++;
      bytesDone += e.bytesDone;
      bytesTotal += e.bytesTotal;
    }
    const status: ImagePullJobStatus = {
      progress: { bytesDone, bytesTotal, nodes: phases },
      desired: this.nodes.size,
      active: c.active,
      succeeded: c.succeeded,
      failed: c.failed,
      failedNodes: failed.slice(0, MAX_FAILED_NODES_LISTED).map(([n]) => n),
      message: parts.join('; ').slice(0, MAX_MESSAGE_CHARS),
      startTime,
    };
    if (tooLarge.length > 0) status.tooLarge = tooLarge;
    if (completionTime !== undefined) status.completionTime = completionTime;
    return status;
  }

  private async finish(spec: ImagePullJobSpec, startTime: string, why: string | undefined): Promise<void> {
    const nowMs = Date.now();
    if (why !== undefined) this.message = this.message === '' ? why : `${this.message}; ${why}`;
    const status = this.status(startTime, new Date(nowMs).toISOString());
    await this.patch(status, true);
    this.log.info({ succeeded: status.succeeded, failed: status.failed, desired: status.desired }, 'ImagePullJob finished');
    await this.expire(spec, nowMs);
  }

  /** Deletes the job ttlSecondsAfterFinished after `finishedMs`, unless it goes away first. */
  private async expire(spec: ImagePullJobSpec, finishedMs: number): Promise<void> {
    const ttl = spec.completionPolicy.ttlSecondsAfterFinished;
    if (ttl === undefined || !Number.isFinite(finishedMs)) return;
    await pause(Math.max(0, finishedMs + ttl * 1000 - Date.now()), this.abort.signal);
    if (this.abort.signal.aborted) return;
    try {
      await this.deps.kube.deleteJob(this.kind, this.namespace, this.name);
      this.log.info({ ttlSecondsAfterFinished: ttl }, 'ImagePullJob deleted after its TTL');
    } catch (err) {
      if (statusCodeOf(err) !== 404) this.log.warn({ err: errorText(err) }, 'could not delete a finished ImagePullJob');
    }
  }

  /** Writes status when it changed; a failure is logged (the next change writes again). */
  private async patch(status: ImagePullJobStatus, force = false): Promise<void> {
    const text = JSON.stringify(status);
    if (!force && text === this.lastPatched) return;
    if (this.abort.signal.aborted && !force) return;
    try {
      await this.deps.kube.patchStatus(this.kind, this.namespace, this.name, status);
      this.lastPatched = text;
    } catch (err) {
      this.log.warn({ err: errorText(err), code: statusCodeOf(err) }, 'could not write ImagePullJob status');
    }
  }
}
