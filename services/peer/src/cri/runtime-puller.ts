import { stat } from 'node:fs/promises';
import { withDeadline, type ImagePullPolicy, type Logger, type RuntimePullOutcome, type ShoalError } from '@shoal/core';
import { CriImageService } from './image-service.js';

/** containerd's CRI socket; the DESIGN contract's default for `--containerd-socket`. */
export const DEFAULT_CONTAINERD_SOCKET = '/run/containerd/containerd.sock';
/** CRI pulls run at once on this node; containerd unpacks each on the node's disk. Pulls. */
export const DEFAULT_RUNTIME_PULL_CONCURRENCY = 2;
/** Pulls waiting their turn at most; beyond it a request is answered `failed` at once. Pulls. */
export const DEFAULT_MAX_RUNTIME_PULLS_QUEUED = 64;
/** One CRI pull may take this long before it is cancelled (blobs come from local disk: unpacking is the cost). Milliseconds: 30 min. */
export const DEFAULT_RUNTIME_PULL_TIMEOUT_MS = 30 * 60_000;
/** The label OpenKruise puts on its sandbox config, in Shoal's own domain. */
export const PULLING_IMAGE_BY_LABEL = 'shoal.io/pulling-image-by';

export interface RuntimePullRequest {
  /** Preheat job id (for logs and the sandbox uid). */
  job: string;
  image: string;
  policy: ImagePullPolicy;
  /** base64 `user:password`; never logged. */
  auth?: string | undefined;
}

export interface RuntimePullResult {
  outcome: RuntimePullOutcome;
  imageRef?: string;
  durationMs: number;
  error?: string;
}

interface Queued {
  request: RuntimePullRequest;
  resolve: (result: RuntimePullResult) => void;
}

/**
 * Has the node's container runtime pull prewarmed images through CRI
 * (runtime.v1 ImageService on `socketPath`), as kruise-daemon does: with
 * `IfNotPresent` ImageStatus first; a PodSandboxConfig with labels; the
 * job's registry credential as AuthConfig. containerd resolves the image
 * through its hosts.toml, which points at this node's proxy, so every blob
 * comes from the store the prefetch just filled. A node without the socket
 * answers `unavailable` (its store is still filled).
 */
export class RuntimePuller {
  private readonly log: Logger;
  private readonly socketPath: string;
  private readonly concurrency: number;
  private readonly maxQueued: number;
  private readonly timeoutMs: number;
  private readonly queue: Queued[] = [];
  private running = 0;
  private service: CriImageService | undefined;
  private readonly abort = new AbortController();

  constructor(components: { log: Logger }, init: { socketPath?: string | undefined; concurrency?: number; maxQueued?: number; timeoutMs?: number } = {}) {
    this.log = components.log.child({ module: 'runtime-pull' });
    this.socketPath = init.socketPath ?? DEFAULT_CONTAINERD_SOCKET;
    this.concurrency = Math.max(1, init.concurrency ?? DEFAULT_RUNTIME_PULL_CONCURRENCY);
    this.maxQueued = Math.max(1, init.maxQueued ?? DEFAULT_MAX_RUNTIME_PULLS_QUEUED);
    this.timeoutMs = Math.max(1, init.timeoutMs ?? DEFAULT_RUNTIME_PULL_TIMEOUT_MS);
  }

  /** Pulls queued or running now. */
  get pending(): number {
    return this.queue.length + this.running;
  }

  /** Never rejects: every failure is an outcome with its reason. */
  pull(request: RuntimePullRequest): Promise<RuntimePullResult> {
    if (this.abort.signal.aborted) return Promise.resolve({ outcome: 'failed', durationMs: 0, error: 'the node agent is shutting down' });
    if (this.pending >= this.maxQueued) return Promise.resolve({ outcome: 'failed', durationMs: 0, error: `busy: ${this.pending} runtime pulls are already queued on this node` });
    return new Promise((resolve) => {
      this.queue.push({ request, resolve });
      this.pump();
    });
  }

  close(): void {
    this.abort.abort(new Error('the node agent is shutting down'));
    for (const q of this.queue.splice(0)) q.resolve({ outcome: 'failed', durationMs: 0, error: 'the node agent is shutting down' });
    this.service?.close();
  }

  private pump(): void {
    while (this.running < this.concurrency && this.queue.length > 0) {
      const item = this.queue.shift() as Queued;
      this.running++;
      void this.one(item.request)
        .then(item.resolve)
        .finally(() => {
          this.running--;
          this.pump();
        });
    }
  }

  private async one(request: RuntimePullRequest): Promise<RuntimePullResult> {
    const startedAt = Date.now();
    const log = this.log.child({ job: request.job, image: request.image, policy: request.policy });
    const result = (outcome: RuntimePullOutcome, extra: { imageRef?: string; error?: string } = {}): RuntimePullResult => ({ outcome, durationMs: Date.now() - startedAt, ...extra });
    if (!(await this.socketPresent())) {
      const error = `no container runtime socket at ${this.socketPath} (set --containerd-socket): the image is in this node's Shoal store only`;
      log.warn({ socket: this.socketPath }, 'runtime pull skipped: no CRI socket');
      return result('unavailable', { error });
    }
    const deadline = withDeadline(this.abort.signal, this.timeoutMs);
    const signal = deadline.signal;
    this.service ??= new CriImageService(this.socketPath);
    try {
      if (request.policy === 'IfNotPresent') {
        const present = await this.service.imageStatus(request.image, { signal });
        if (present !== undefined) {
          log.info({ imageRef: present.id }, 'image already in the runtime: not pulled (IfNotPresent)');
          return result('present', { imageRef: present.id });
        }
      }
      const imageRef = await this.service.pullImage(
        {
          image: request.image,
          auth: request.auth === undefined ? undefined : { auth: request.auth },
          sandboxLabels: { [PULLING_IMAGE_BY_LABEL]: 'shoal' },
          sandboxName: 'shoal-prewarm',
          sandboxUid: request.job,
          sandboxNamespace: 'shoal',
        },
        { signal },
      );
      log.info({ imageRef, durationMs: Date.now() - startedAt }, 'image pulled into the runtime');
      return result('pulled', { imageRef });
    } catch (err) {
      const error = signal.aborted && !this.abort.signal.aborted ? `the runtime pull took longer than ${this.timeoutMs} ms` : errorText(err);
      log.warn({ err: error, code: (err as Partial<ShoalError>).code }, 'runtime pull failed');
      return result('failed', { error });
    } finally {
      deadline.clear();
    }
  }

  private async socketPresent(): Promise<boolean> {
    try {
      return (await stat(this.socketPath)).isSocket();
    } catch {
      return false;
    }
  }
}

function errorText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).slice(0, 2000);
}
