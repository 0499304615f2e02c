import { CoordinationV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions, Watch, type V1Lease } from '@kubernetes/client-node';
import { isRecord } from '@shoal/core';
import { KubeConflictError } from '../errors.js';
import type { KubeNode, KubePod } from './select.js';
import type { JobKind } from './spec.js';
import {
  IMAGE_PULL_JOB_GROUP,
  IMAGE_PULL_JOB_VERSION,
  JOB_PLURALS,
  leaseBody,
  MAX_LISTED_PODS,
  toLeaseRecord,
  type JobEvent,
  type LeaseRecord,
  MAX_LISTED_JOBS,
  MAX_LISTED_NODES,
  statusCodeOf,
  toImagePullJob,
  type ImagePullJobObject,
  type ImagePullJobStatus,
  type KubeAccess,
  type WatchEvent,
} from './kube.js';

/** The API server closes a watch after this long; the controller then lists again. Seconds: 5 min. */
const WATCH_TIMEOUT_SECONDS = 300;

/** KubeAccess through @kubernetes/client-node: ImagePullJobs in every namespace, or in `namespace`. */
export class KubeClient implements KubeAccess {
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly coordination: CoordinationV1Api;
  private readonly watcher: Watch;
  /** Who writes the Events (`source.component`, `reportingComponent`). */
  private readonly component = 'shoal-supernode';
  private readonly namespace: string | undefined;

  constructor(config: KubeConfig, namespace: string | undefined) {
    this.custom = config.makeApiClient(CustomObjectsApi);
    this.core = config.makeApiClient(CoreV1Api);
    this.coordination = config.makeApiClient(CoordinationV1Api);
    this.watcher = new Watch(config);
    this.namespace = namespace;
  }

  private jobsPath(kind: JobKind): string {
    const base = `/apis/${IMAGE_PULL_JOB_GROUP}/${IMAGE_PULL_JOB_VERSION}`;
    return this.namespace === undefined ? `${base}/${JOB_PLURALS[kind]}` : `${base}/namespaces/${encodeURIComponent(this.namespace)}/${JOB_PLURALS[kind]}`;
  }

  async listJobs(kind: JobKind): Promise<{ items: ImagePullJobObject[]; resourceVersion: string; truncated: boolean }> {
    const common = { group: IMAGE_PULL_JOB_GROUP, version: IMAGE_PULL_JOB_VERSION, plural: JOB_PLURALS[kind], limit: MAX_LISTED_JOBS };
    const list: unknown = this.namespace === undefined ? await this.custom.listClusterCustomObject(common) : await this.custom.listNamespacedCustomObject({ ...common, namespace: this.namespace });
    const body = isRecord(list) ? list : {};
    const metadata = isRecord(body.metadata) ? body.metadata : {};
    const items = Array.isArray(body.items) ? body.items.flatMap((i) => toImagePullJob(i, kind) ?? []) : [];
    const resourceVersion = typeof metadata.resourceVersion === 'string' ? metadata.resourceVersion : '';
    return { items, resourceVersion, truncated: typeof metadata.continue === 'string' && metadata.continue !== '' };
  }

  async watchJobs(kind: JobKind, resourceVersion: string, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    let finish: (err: unknown) => void = () => undefined;
    const ended = new Promise<void>((resolve, reject) => {
      finish = (err) => (err === null || err === undefined || signal.aborted ? resolve() : reject(err instanceof Error ? err : new Error(String(err))));
    });
    const opening = this.watcher.watch(
      this.jobsPath(kind),
      { resourceVersion, allowWatchBookmarks: true, timeoutSeconds: WATCH_TIMEOUT_SECONDS },
      (type: string, object: unknown) => {
        if (type === 'BOOKMARK') {
          const rv = isRecord(object) && isRecord(object.metadata) ? object.metadata.resourceVersion : undefined;
          if (typeof rv === 'string') onEvent({ type: 'BOOKMARK', resourceVersion: rv });
        } else if (type === 'ERROR') {
          // A metav1.Status: 410 Gone when resourceVersion is too old.
          const s = isRecord(object) ? object : {};
          onEvent({ type: 'ERROR', code: typeof s.code === 'number' ? s.code : 500, message: typeof s.message === 'string' ? s.message : 'watch error' });
        } else if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') {
          const job = toImagePullJob(object, kind);
          if (job !== undefined) onEvent({ type, object: job });
        }
      },
      (err: unknown) => finish(err),
    );
    // A stop while the watch is still being opened (no answer headers yet) must not wait for
    // them: the controller's close would hang on a watch nobody can abort yet.
    let onStop: () => void = () => undefined;
    const stopped = new Promise<undefined>((resolve) => {
      onStop = () => resolve(undefined);
      signal.addEventListener('abort', onStop, { once: true });
    });
    const controller = await Promise.race([opening, stopped]).finally(() => signal.removeEventListener('abort', onStop));
    if (controller === undefined || signal.aborted) {
      opening.then((c) => c.abort(), () => undefined);
      return;
    }
    const onAbort = (): void => controller.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await ended;
    } finally {
      signal.removeEventListener('abort', onAbort);
      controller.abort();
    }
  }

  async patchStatus(kind: JobKind, namespace: string, name: string, status: ImagePullJobStatus): Promise<void> {
    await this.custom.patchNamespacedCustomObjectStatus(
      { group: IMAGE_PULL_JOB_GROUP, version: IMAGE_PULL_JOB_VERSION, plural: JOB_PLURALS[kind], namespace, name, body: { status } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  async deleteJob(kind: JobKind, namespace: string, name: string): Promise<void> {
    await this.custom.deleteNamespacedCustomObject({ group: IMAGE_PULL_JOB_GROUP, version: IMAGE_PULL_JOB_VERSION, plural: JOB_PLURALS[kind], namespace, name });
  }

  async listPods(namespace: string, labelSelector: string): Promise<KubePod[]> {
    const list = await this.core.listNamespacedPod({ namespace, labelSelector, limit: MAX_LISTED_PODS });
    return list.items.map((p) => ({ nodeName: p.spec?.nodeName, phase: p.status?.phase, deleting: p.metadata?.deletionTimestamp !== undefined }));
  }

  async createEvent(job: ImagePullJobObject, event: JobEvent): Promise<void> {
    const now = new Date();
    await this.core.createNamespacedEvent({
      namespace: job.metadata.namespace,
      body: {
        metadata: { generateName: `${job.metadata.name}.`, namespace: job.metadata.namespace },
        involvedObject: { apiVersion: `${IMAGE_PULL_JOB_GROUP}/${IMAGE_PULL_JOB_VERSION}`, kind: job.kind, name: job.metadata.name, namespace: job.metadata.namespace, uid: job.metadata.uid },
        type: event.type,
        reason: event.reason,
        message: event.message.slice(0, 1024),
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
        source: { component: this.component },
        reportingComponent: this.component,
      },
    });
  }

  async getLease(namespace: string, name: string): Promise<LeaseRecord | undefined> {
    try {
      return toLeaseRecord(await this.coordination.readNamespacedLease({ namespace, name }));
    } catch (err) {
      if (statusCodeOf(err) === 404) return undefined;
      throw err;
    }
  }

  async createLease(lease: LeaseRecord): Promise<LeaseRecord> {
    try {
      const created = await this.coordination.createNamespacedLease({ namespace: lease.namespace, body: leaseBody(lease) as V1Lease });
      return toLeaseRecord(created) ?? lease;
    } catch (err) {
      if (statusCodeOf(err) === 409) throw new KubeConflictError(`Lease ${lease.namespace}/${lease.name} exists`);
      throw err;
    }
  }

  async updateLease(lease: LeaseRecord): Promise<LeaseRecord> {
    try {
      const updated = await this.coordination.replaceNamespacedLease({ namespace: lease.namespace, name: lease.name, body: leaseBody(lease) as V1Lease });
      return toLeaseRecord(updated) ?? lease;
    } catch (err) {
      if (statusCodeOf(err) === 409) throw new KubeConflictError(`Lease ${lease.namespace}/${lease.name} changed since it was read`);
      throw err;
    }
  }

  async listNodes(): Promise<KubeNode[]> {
    const list = await this.core.listNode({ limit: MAX_LISTED_NODES });
    return list.items.flatMap((n) => (n.metadata?.name === undefined ? [] : [{ name: n.metadata.name, labels: n.metadata.labels ?? {} }]));
  }

  async getSecret(namespace: string, name: string): Promise<{ type: string | undefined; data: Record<string, string> } | undefined> {
    try {
      const secret = await this.core.readNamespacedSecret({ namespace, name });
      return { type: secret.type, data: secret.data ?? {} };
    } catch (err) {
      if (statusCodeOf(err) === 404) return undefined;
      throw err;
    }
  }
}

/**
 * A KubeClient from a kubeconfig file, or (without one) the pod's service
 * account, as in-cluster clients do. Throws when neither is usable.
 */
export function connectKube(options: { kubeconfig?: string | undefined; namespace?: string | undefined }): KubeClient {
  const config = new KubeConfig();
  if (options.kubeconfig !== undefined) config.loadFromFile(options.kubeconfig);
  else {
    if (process.env.KUBERNETES_SERVICE_HOST === undefined) throw new Error('--image-pull-jobs needs --kubeconfig FILE when not running in a Kubernetes pod');
    config.loadFromCluster();
  }
  if (config.getCurrentCluster() === null) throw new Error(`no current cluster in ${options.kubeconfig ?? 'the in-cluster config'}`);
  return new KubeClient(config, options.namespace);
}
