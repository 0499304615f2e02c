import { isRecord } from '@shoal/core';
import type { KubeNode, KubePod } from './select.js';
import type { JobKind } from './spec.js';

export const IMAGE_PULL_JOB_GROUP = 'shoal.io';
export const IMAGE_PULL_JOB_VERSION = 'v1alpha1';
export const IMAGE_PULL_JOB_PLURAL = 'imagepulljobs';
export const IMAGE_LIST_PULL_JOB_PLURAL = 'imagelistpulljobs';
/** The resource plural of each kind. */
export const JOB_PLURALS: Readonly<Record<JobKind, string>> = { ImagePullJob: IMAGE_PULL_JOB_PLURAL, ImageListPullJob: IMAGE_LIST_PULL_JOB_PLURAL };
/** Pods read in one list (podSelector). */
export const MAX_LISTED_PODS = 5000;
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
  /** Byte-level progress across every node (and image): bytes verified in the nodes' stores, and nodes by phase. */
  progress?: ImagePullJobProgress;
  /** Blobs of the job's images larger than the swarm carries: not warmed; containerd takes them from the registry (at most 10 listed). */
  tooLarge?: Array<{ digest: string; sizeBytes: number }>;
}

export interface ImagePullJobProgress {
  /** Bytes of the job's blobs verified in selected nodes' stores, summed over nodes (and images). */
  bytesDone: number;
  /** The image's bytes × nodes being filled or done (a node not yet started counts once it starts). */
  bytesTotal: number;
  /** Nodes by phase: waiting their turn, filling their store, containerd pulling, done, failed; storeOnly counts succeeded nodes without a container runtime. */
  nodes: { pending: number; filling: number; pulling: number; succeeded: number; failed: number; storeOnly: number };
}

export interface ImagePullJobObject {
  kind: JobKind;
  metadata: ObjectMeta;
  /** Untrusted: parsed by parseImagePullJobSpec. */
  spec: unknown;
  status: ImagePullJobStatus;
}

export type WatchEvent = { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: ImagePullJobObject } | { type: 'BOOKMARK'; resourceVersion: string } | { type: 'ERROR'; code: number; message: string };

/** A coordination.k8s.io/v1 Lease, as leader election reads and writes it. */
export interface LeaseRecord {
  namespace: string;
  name: string;
  /** Empty for a Lease not yet created. */
  resourceVersion: string;
  holderIdentity: string | undefined;
  leaseDurationSeconds: number | undefined;
  /** RFC 3339 with microseconds (MicroTime). */
  acquireTime: string | undefined;
  renewTime: string | undefined;
  leaseTransitions: number;
}

/** An Event on a job (core/v1): `Normal` or `Warning`, a CamelCase reason, a message. */
export interface JobEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** What the controller asks of the Kubernetes API; KubeClient is the real one. */
export interface KubeAccess {
  listJobs(kind: JobKind): Promise<{ items: ImagePullJobObject[]; resourceVersion: string; truncated: boolean }>;
  /** Resolves when the watch ends (closed by the server, an error, or `signal`); rejects when it could not start. */
  watchJobs(kind: JobKind, resourceVersion: string, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void>;
  patchStatus(kind: JobKind, namespace: string, name: string, status: ImagePullJobStatus): Promise<void>;
  deleteJob(kind: JobKind, namespace: string, name: string): Promise<void>;
  listNodes(): Promise<KubeNode[]>;
  /** Pods of `namespace` matching a labelSelector query (`a=b,c in (d)`). */
  listPods(namespace: string, labelSelector: string): Promise<KubePod[]>;
  /** Records an Event on the job (best effort: the caller logs a failure). */
  createEvent(job: ImagePullJobObject, event: JobEvent): Promise<void>;
  /** Undefined when there is no such Lease. */
  getLease(namespace: string, name: string): Promise<LeaseRecord | undefined>;
  /** Creates the Lease; KubeConflictError when it exists. */
  createLease(lease: LeaseRecord): Promise<LeaseRecord>;
  /** Replaces the Lease at `lease.resourceVersion`; KubeConflictError when someone wrote it since. */
  updateLease(lease: LeaseRecord): Promise<LeaseRecord>;
  /** Undefined when there is no such Secret. */
  getSecret(namespace: string, name: string): Promise<{ type: string | undefined; data: Record<string, string> } | undefined>;
}

/** The few fields of a listed or watched object the controller needs; undefined when it lacks them. */
export function toImagePullJob(value: unknown, kind: JobKind = 'ImagePullJob'): ImagePullJobObject | undefined {
  if (!isRecord(value) || !isRecord(value.metadata)) return undefined;
  const m = value.metadata;
  if (typeof m.name !== 'string' || typeof m.namespace !== 'string' || typeof m.uid !== 'string') return undefined;
  const status = isRecord(value.status) ? (value.status as ImagePullJobStatus) : {};
  return {
    kind,
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

/** A Lease from its JSON (the API's shape); undefined when it is not one. */
export function toLeaseRecord(value: unknown): LeaseRecord | undefined {
  if (!isRecord(value) || !isRecord(value.metadata)) return undefined;
  const m = value.metadata;
  const spec = isRecord(value.spec) ? value.spec : {};
  if (typeof m.name !== 'string' || typeof m.namespace !== 'string') return undefined;
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  return {
    namespace: m.namespace,
    name: m.name,
    resourceVersion: typeof m.resourceVersion === 'string' ? m.resourceVersion : '',
    holderIdentity: str(spec.holderIdentity),
    leaseDurationSeconds: typeof spec.leaseDurationSeconds === 'number' ? spec.leaseDurationSeconds : undefined,
    acquireTime: str(spec.acquireTime),
    renewTime: str(spec.renewTime),
    leaseTransitions: typeof spec.leaseTransitions === 'number' ? spec.leaseTransitions : 0,
  };
}

/** The Lease as the API takes it. */
export function leaseBody(lease: LeaseRecord): Record<string, unknown> {
  const spec: Record<string, unknown> = { leaseTransitions: lease.leaseTransitions };
  if (lease.holderIdentity !== undefined) spec.holderIdentity = lease.holderIdentity;
  if (lease.leaseDurationSeconds !== undefined) spec.leaseDurationSeconds = lease.leaseDurationSeconds;
  if (lease.acquireTime !== undefined) spec.acquireTime = lease.acquireTime;
  if (lease.renewTime !== undefined) spec.renewTime = lease.renewTime;
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: lease.name, namespace: lease.namespace, ...(lease.resourceVersion === '' ? {} : { resourceVersion: lease.resourceVersion }) },
    spec,
  };
}
