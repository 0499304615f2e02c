import type { KubeNode } from './select.js';

export const IMAGE_PULL_JOB_GROUP = 'shoal.io';
export const IMAGE_PULL_JOB_VERSION = 'v1alpha1';
export const IMAGE_PULL_JOB_PLURAL = 'imagepulljobs';
/** ImagePullJobs read in one list (the controller watches at most this many). */
export const MAX_LISTED_JOBS = 1000;
/** Nodes read in one list. */
export const MAX_LISTED_NODES = 5000;

export interface ObjectMeta {
  name: string;
  namespace: string;
  uid: string;
  generation: number;
  resourceVersion: string;
  creationTimestamp?: string | undefined;
}

/** status of an ImagePullJob, as OpenKruise shapes it. */
export interface ImagePullJobStatus {
  desired?: number;
  active?: number;
  succeeded?: number;
  failed?: number;
  failedNodes?: string[];
  message?: string;
  startTime?: string;
  completionTime?: string;
}

export interface ImagePullJobObject {
  metadata: ObjectMeta;
  /** Untrusted: parsed by parseImagePullJobSpec. */
  spec: unknown;
  status: ImagePullJobStatus;
}

export type WatchEvent = { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: ImagePullJobObject } | { type: 'BOOKMARK'; resourceVersion: string } | { type: 'ERROR'; code: number; message: string };

/** What the controller asks of the Kubernetes API; KubeClient is the real one. */
export interface KubeAccess {
  listJobs(): Promise<{ items: ImagePullJobObject[]; resourceVersion: string; truncated: boolean }>;
  /** Resolves when the watch ends (closed by the server, an error, or `signal`); rejects when it could not start. */
  watchJobs(resourceVersion: string, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void>;
  patchStatus(namespace: string, name: string, status: ImagePullJobStatus): Promise<void>;
  deleteJob(namespace: string, name: string): Promise<void>;
  listNodes(): Promise<KubeNode[]>;
  /** Undefined when there is no such Secret. */
  getSecret(namespace: string, name: string): Promise<{ type: string | undefined; data: Record<string, string> } | undefined>;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The few fields of a listed or watched object the controller needs; undefined when it lacks them. */
export function toImagePullJob(value: unknown): ImagePullJobObject | undefined {
  if (!isRecord(value) || !isRecord(value.metadata)) return undefined;
  const m = value.metadata;
  if (typeof m.name !== 'string' || typeof m.namespace !== 'string' || typeof m.uid !== 'string') return undefined;
  const status = isRecord(value.status) ? (value.status as ImagePullJobStatus) : {};
  return {
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      generation: typeof m.generation === 'number' ? m.generation : 0,
      resourceVersion: typeof m.resourceVersion === 'string' ? m.resourceVersion : '',
      creationTimestamp: typeof m.creationTimestamp === 'string' ? m.creationTimestamp : undefined,
    },
    spec: value.spec,
    status,
  };
}

/** Kubernetes API status code of a failed call, if it has one. */
export function statusCodeOf(err: unknown): number | undefined {
  if (!isRecord(err)) return undefined;
  // client-node's ApiException carries `code`; other HTTP errors `statusCode`.
  if (typeof err.code === 'number') return err.code;
  if (typeof err.statusCode === 'number') return err.statusCode;
  return undefined;
}

/**
 * A KubeAccess from a kubeconfig file, or (without one) the pod's service
 * account, as in-cluster clients do. Throws when neither is usable.
 * @kubernetes/client-node is loaded only here: importing it costs ~0.5 s and
 * ~85 MiB of RSS, which no node agent and no supernode without
 * --image-pull-jobs should pay.
 */
export async function kubeClientFrom(options: { kubeconfig?: string | undefined; namespace?: string | undefined }): Promise<KubeAccess> {
  const { connectKube } = await import('./kube-client.js');
  return connectKube(options);
}
