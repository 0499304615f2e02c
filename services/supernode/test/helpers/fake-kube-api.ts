import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import yaml from 'js-yaml';

/**
 * A FAKE Kubernetes API server, for tests only: no real API server can run on
 * these machines. It implements just what the ImagePullJob controller calls,
 * with the real JSON shapes and the API server's rules where the controller
 * depends on them: list and watch (chunked JSON lines, from a resourceVersion)
 * of shoal.io/v1alpha1 ImagePullJobs and ImageListPullJobs; their status
 * subresource (a merge-PATCH there changes status only and bumps
 * resourceVersion, not generation; a metadata.resourceVersion in the patch is
 * a precondition: 409 Conflict when stale); DELETE; list of Nodes; list of
 * Pods by labelSelector; GET of Secrets; POST of Events; and
 * coordination.k8s.io/v1 Leases (create answers 409 AlreadyExists when one
 * exists, PUT with a stale resourceVersion answers 409 Conflict, every write
 * bumps resourceVersion). A job's status is pruned to the Helm chart's CRD
 * schema, as a real API server prunes fields its structural schema does not
 * name: a status field the CRD lacks never reaches a test. Tests add and
 * change objects and read back every status patch and Event.
 */

const GROUP_VERSION = 'shoal.io/v1alpha1';
/** The job kinds and their plurals. */
export type FakeJobKind = 'ImagePullJob' | 'ImageListPullJob';
export const FAKE_JOB_PLURALS: Record<FakeJobKind, string> = { ImagePullJob: 'imagepulljobs', ImageListPullJob: 'imagelistpulljobs' };
const KIND_OF_PLURAL: Record<string, FakeJobKind> = { imagepulljobs: 'ImagePullJob', imagelistpulljobs: 'ImageListPullJob' };
/** Events kept for watches that resume from a resourceVersion; older ones answer 410 Gone. */
const MAX_EVENTS = 1000;

export interface FakeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    resourceVersion: string;
    generation: number;
    creationTimestamp: string;
    labels?: Record<string, string>;
    deletionTimestamp?: string;
  };
  spec?: unknown;
  status?: Record<string, unknown>;
  type?: string;
  data?: Record<string, string>;
}

interface Watcher {
  kind: FakeJobKind;
  namespace: string | undefined;
  res: ServerResponse;
}

interface Event {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: FakeObject;
}

export interface RecordedRequest {
  method: string;
  path: string;
  contentType: string | undefined;
}

function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** The chart's CRDs, from services/supernode/dist/test/helpers/. */
const CRD_FILES: Record<FakeJobKind, URL> = {
  ImagePullJob: new URL('../../../../../charts/shoal/crds/imagepulljobs.shoal.io.yaml', import.meta.url),
  ImageListPullJob: new URL('../../../../../charts/shoal/crds/imagelistpulljobs.shoal.io.yaml', import.meta.url),
};

/** An OpenAPI v3 schema, as far as structural pruning reads it. */
interface SchemaNode {
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
}

/** The status schema of each job kind's served version, from the chart's CRD. */
async function statusSchemas(): Promise<Record<FakeJobKind, SchemaNode>> {
  const out: Partial<Record<FakeJobKind, SchemaNode>> = {};
  for (const [kind, file] of Object.entries(CRD_FILES) as Array<[FakeJobKind, URL]>) {
    const crd = yaml.load(await readFile(file, 'utf8')) as { spec: { versions: Array<{ served: boolean; schema: { openAPIV3Schema: SchemaNode } }> } };
    const version = crd.spec.versions.find((v) => v.served);
    const status = version?.schema.openAPIV3Schema.properties?.status;
    if (status === undefined) throw new Error(`fake: ${file.pathname} has no status schema`);
    out[kind] = status;
  }
  return out as Record<FakeJobKind, SchemaNode>;
}

/** Drops what a structural schema does not name, as the API server does on every write. */
function prune(value: unknown, schema: SchemaNode): unknown {
  if (schema['x-kubernetes-preserve-unknown-fields'] === true) return value;
  if (Array.isArray(value)) return schema.items === undefined ? value : value.map((v) => prune(v, schema.items as SchemaNode));
  if (typeof value !== 'object' || value === null || schema.properties === undefined) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const sub = schema.properties[k];
    if (sub !== undefined) out[k] = prune(v, sub);
  }
  return out;
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function statusBody(code: number, reason: string, message: string): string {
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
}

export class FakeKubeApi {
  readonly url: string;
  /** Every request, in order (method, path with query, content type). */
  readonly requests: RecordedRequest[] = [];
  private readonly server: Server;
  private rv = 1;
  /** Keyed `kind/namespace/name`. */
  private readonly jobs = new Map<string, FakeObject>();
  private readonly nodes = new Map<string, FakeObject>();
  private readonly pods = new Map<string, FakeObject>();
  private readonly leases = new Map<string, Record<string, unknown> & { metadata: Record<string, unknown> }>();
  /** Every Event the client created, in order. */
  readonly recordedEvents: Array<Record<string, unknown>> = [];
  /** Lease writes answered 409, for tests of leader election. */
  leaseConflicts = 0;
  /** Lease writes whose holderIdentity is listed here answer 503 (a replica cut off from the API server). */
  readonly failLeaseWritesBy = new Set<string>();
  private readonly secrets = new Map<string, FakeObject>();
  private readonly events: Event[] = [];
  private readonly watchers = new Set<Watcher>();
  private readonly patches = new Map<string, Array<Record<string, unknown>>>();
  /** The next N list requests for ImagePullJobs answer 500 (to test the controller's backoff). */
  failLists = 0;

  private readonly statusSchemas: Record<FakeJobKind, SchemaNode>;

  private constructor(server: Server, url: string, statusSchemas: Record<FakeJobKind, SchemaNode>) {
    this.server = server;
    this.url = url;
    this.statusSchemas = statusSchemas;
    server.on('request', (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(statusBody(500, 'InternalError', String(err)));
      });
    });
  }

  static async start(): Promise<FakeKubeApi> {
    const schemas = await statusSchemas();
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return new FakeKubeApi(server, `http://127.0.0.1:${port}`, schemas);
  }

  async close(): Promise<void> {
    this.closeWatches();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** A KubeConfig pointing at this fake (plain HTTP, no credentials). */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromString(this.kubeconfigYaml());
    return kc;
  }

  kubeconfigYaml(): string {
    return [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: fake',
      '  cluster:',
      `    server: ${this.url}`,
      // client-node refuses plain http unless this is set (there is no TLS to verify).
      '    insecure-skip-tls-verify: true',
      'users:',
      '- name: fake',
      '  user: {}',
      'contexts:',
      '- name: fake',
      '  context:',
      '    cluster: fake',
      '    user: fake',
      'current-context: fake',
      '',
    ].join('\n');
  }

  async writeKubeconfig(path: string): Promise<void> {
    await writeFile(path, this.kubeconfigYaml());
  }

  /** Ends every open watch, as an API server does at its timeout or on restart. */
  closeWatches(): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  get openWatches(): number {
    return this.watchers.size;
  }

  // --- objects ---------------------------------------------------------------------

  createJob(namespace: string, name: string, spec: unknown, kind: FakeJobKind = 'ImagePullJob'): FakeObject {
    const key = `${kind}/${namespace}/${name}`;
    if (this.jobs.has(key)) throw new Error(`${key} exists`);
    const obj: FakeObject = {
      apiVersion: GROUP_VERSION,
      kind,
      metadata: { name, namespace, uid: randomUUID(), resourceVersion: '', generation: 1, creationTimestamp: new Date().toISOString() },
      spec: clone(spec),
    };
    this.jobs.set(key, obj);
    this.emit('ADDED', obj);
    return clone(obj);
  }

  /** A new spec: generation goes up, as the API server does for spec changes. */
  updateJobSpec(namespace: string, name: string, spec: unknown, kind: FakeJobKind = 'ImagePullJob'): void {
    const obj = this.mustGetJob(namespace, name, kind);
    obj.spec = clone(spec);
    obj.metadata.generation++;
    this.emit('MODIFIED', obj);
  }

  deleteJob(namespace: string, name: string, kind: FakeJobKind = 'ImagePullJob'): void {
    const key = `${kind}/${namespace}/${name}`;
    const obj = this.jobs.get(key);
    if (obj === undefined) return;
    this.jobs.delete(key);
    this.emit('DELETED', obj);
  }

  getJob(namespace: string, name: string, kind: FakeJobKind = 'ImagePullJob'): FakeObject | undefined {
    const obj = this.jobs.get(`${kind}/${namespace}/${name}`);
    return obj === undefined ? undefined : clone(obj);
  }

  /** Every status merge-patch body the client sent for this job, in order. */
  statusPatches(namespace: string, name: string, kind: FakeJobKind = 'ImagePullJob'): Array<Record<string, unknown>> {
    return clone(this.patches.get(`${kind}/${namespace}/${name}`) ?? []);
  }

  /** Events recorded on one job (by involvedObject), in order. */
  eventsFor(namespace: string, name: string, kind: FakeJobKind = 'ImagePullJob'): Array<{ type: string; reason: string; message: string }> {
    return this.recordedEvents
      .filter((e) => {
        const o = e.involvedObject as Record<string, unknown> | undefined;
        return o?.kind === kind && o.name === name && o.namespace === namespace;
      })
      .map((e) => ({ type: String(e.type), reason: String(e.reason), message: String(e.message) }));
  }

  /** A Pod; `nodeName` unset is an unscheduled pod. */
  addPod(namespace: string, name: string, labels: Record<string, string>, nodeName: string | undefined, phase = 'Running'): void {
    this.pods.set(`${namespace}/${name}`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace, uid: randomUUID(), resourceVersion: String(++this.rv), generation: 0, creationTimestamp: new Date().toISOString(), labels },
      spec: nodeName === undefined ? {} : { nodeName },
      status: { phase },
    });
  }

  getLease(namespace: string, name: string): Record<string, unknown> | undefined {
    const lease = this.leases.get(`${namespace}/${name}`);
    return lease === undefined ? undefined : clone(lease);
  }

  addNode(name: string, labels: Record<string, string> = {}): void {
    this.nodes.set(name, {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, uid: randomUUID(), resourceVersion: String(++this.rv), generation: 0, creationTimestamp: new Date().toISOString(), labels },
    });
  }

  /** A Secret; `data` values are base64, as the API returns them. */
  addSecret(namespace: string, name: string, type: string, data: Record<string, string>): void {
    this.secrets.set(`${namespace}/${name}`, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace, uid: randomUUID(), resourceVersion: String(++this.rv), generation: 0, creationTimestamp: new Date().toISOString() },
      type,
      data,
    });
  }

  private mustGetJob(namespace: string, name: string, kind: FakeJobKind): FakeObject {
    const obj = this.jobs.get(`${kind}/${namespace}/${name}`);
    if (obj === undefined) throw new Error(`no ImagePullJob ${namespace}/${name}`);
    return obj;
  }

  private emit(type: Event['type'], obj: FakeObject): void {
    obj.metadata.resourceVersion = String(++this.rv);
    const event: Event = { rv: this.rv, type, object: clone(obj) };
    this.events.push(event);
    if (this.events.length > MAX_EVENTS) this.events.shift();
    for (const w of this.watchers) if (w.kind === obj.kind && (w.namespace === undefined || w.namespace === obj.metadata.namespace)) this.send(w, event);
  }

  private send(w: Watcher, event: Event): void {
    w.res.write(`${JSON.stringify({ type: event.type, object: event.object })}\n`);
  }

  // --- HTTP ------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    this.requests.push({ method, path: `${url.pathname}${url.search}`, contentType: req.headers['content-type'] });
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const json = (code: number, value: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(typeof value === 'string' ? value : JSON.stringify(value));
    };
    const notFound = (what: string): void => json(404, statusBody(404, 'NotFound', `${what} not found`));
    const p = url.pathname;
    let m: RegExpExecArray | null;

    // ImagePullJobs and ImageListPullJobs: list or watch, all namespaces or one.
    if (method === 'GET' && (m = /^\/apis\/shoal\.io\/v1alpha1(?:\/namespaces\/([^/]+))?\/(imagepulljobs|imagelistpulljobs)$/.exec(p)) !== null) {
      const namespace = m[1];
      const kind = KIND_OF_PLURAL[m[2] ?? ''] as FakeJobKind;
      if (url.searchParams.get('watch') === 'true') return this.watch(kind, namespace, url, res);
      if (this.failLists > 0) {
        this.failLists--;
        return json(500, statusBody(500, 'InternalError', 'fake: list failure asked for by the test'));
      }
      const items = [...this.jobs.values()].filter((j) => j.kind === kind && (namespace === undefined || j.metadata.namespace === namespace));
      return json(200, { apiVersion: GROUP_VERSION, kind: `${kind}List`, metadata: { resourceVersion: String(this.rv) }, items });
    }
    if ((m = /^\/apis\/shoal\.io\/v1alpha1\/namespaces\/([^/]+)\/(imagepulljobs|imagelistpulljobs)\/([^/]+)(\/status)?$/.exec(p)) !== null) {
      const [, namespace = '', plural = '', name = '', sub] = m;
      const kind = KIND_OF_PLURAL[plural] as FakeJobKind;
      const key = `${kind}/${namespace}/${name}`;
      const obj = this.jobs.get(key);
      if (obj === undefined) return notFound(`${plural}.shoal.io "${name}"`);
      if (method === 'GET') return json(200, obj);
      if (method === 'PATCH' && sub === '/status') {
        if (req.headers['content-type'] !== 'application/merge-patch+json') return json(415, statusBody(415, 'UnsupportedMediaType', `fake: only merge patches, not ${String(req.headers['content-type'])}`));
        const patch = JSON.parse(body) as Record<string, unknown>;
        const list = this.patches.get(key) ?? [];
        list.push(patch);
        this.patches.set(key, list);
        // A resourceVersion in the patch is a precondition, as on a real API server.
        const meta = patch.metadata as Record<string, unknown> | undefined;
        if (typeof meta?.resourceVersion === 'string' && meta.resourceVersion !== obj.metadata.resourceVersion) {
          return json(409, statusBody(409, 'Conflict', `Operation cannot be fulfilled on ${plural}.shoal.io "${name}": the object has been modified; please apply your changes to the latest version and try again`));
        }
        // The status subresource ignores everything but status; generation stays (only spec changes move it).
        obj.status = prune(mergePatch(obj.status ?? {}, patch.status ?? {}), this.statusSchemas[kind]) as Record<string, unknown>;
        this.emit('MODIFIED', obj);
        return json(200, obj);
      }
      if (method === 'DELETE' && sub === undefined) {
        this.deleteJob(namespace, name, kind);
        return json(200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, group: 'shoal.io', kind: plural, uid: obj.metadata.uid } });
      }
      return json(405, statusBody(405, 'MethodNotAllowed', `${method} ${p}`));
    }
    if (method === 'GET' && (m = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(p)) !== null) {
      const namespace = m[1];
      const selector = parseLabelSelector(url.searchParams.get('labelSelector') ?? '');
      if (selector === undefined) return json(400, statusBody(400, 'BadRequest', `fake: unable to parse labelSelector ${url.searchParams.get('labelSelector') ?? ''}`));
      const items = [...this.pods.values()].filter((pod) => pod.metadata.namespace === namespace && selector(pod.metadata.labels ?? {}));
      return json(200, { apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion: String(this.rv) }, items });
    }
    if (method === 'POST' && (m = /^\/api\/v1\/namespaces\/([^/]+)\/events$/.exec(p)) !== null) {
      const event = JSON.parse(body) as Record<string, unknown>;
      const meta = (event.metadata ?? {}) as Record<string, unknown>;
      if (meta.namespace !== undefined && meta.namespace !== m[1]) return json(400, statusBody(400, 'BadRequest', 'fake: the namespace of the object does not match the namespace on the request'));
      for (const field of ['involvedObject', 'reason', 'message', 'type']) if (event[field] === undefined) return json(422, statusBody(422, 'Invalid', `fake: Event.${field} is required`));
      const name = typeof meta.name === 'string' ? meta.name : `${String(meta.generateName ?? 'event.')}${randomUUID().slice(0, 8)}`;
      const stored = { ...event, metadata: { ...meta, name, namespace: m[1], uid: randomUUID(), resourceVersion: String(++this.rv) } };
      this.recordedEvents.push(stored);
      return json(201, stored);
    }
    if ((m = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([^/]+)\/leases(?:\/([^/]+))?$/.exec(p)) !== null) {
      const [, namespace = '', name] = m;
      if (method === 'GET' && name !== undefined) {
        const lease = this.leases.get(`${namespace}/${name}`);
        return lease === undefined ? notFound(`leases.coordination.k8s.io "${name}"`) : json(200, lease);
      }
      if (method === 'POST' && name === undefined) {
        const lease = JSON.parse(body) as Record<string, unknown> & { metadata: Record<string, unknown> };
        const leaseName = String(lease.metadata.name ?? '');
        const key = `${namespace}/${leaseName}`;
        if (this.leases.has(key)) {
          this.leaseConflicts++;
          return json(409, statusBody(409, 'AlreadyExists', `leases.coordination.k8s.io "${leaseName}" already exists`));
        }
        const stored = { ...lease, apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { ...lease.metadata, name: leaseName, namespace, uid: randomUUID(), resourceVersion: String(++this.rv), creationTimestamp: new Date().toISOString() } };
        this.leases.set(key, stored);
        return json(201, stored);
      }
      if (method === 'PUT' && name !== undefined) {
        const key = `${namespace}/${name}`;
        const current = this.leases.get(key);
        if (current === undefined) return notFound(`leases.coordination.k8s.io "${name}"`);
        const lease = JSON.parse(body) as Record<string, unknown> & { metadata: Record<string, unknown> };
        const holder = (lease.spec as Record<string, unknown> | undefined)?.holderIdentity;
        if (typeof holder === 'string' && this.failLeaseWritesBy.has(holder)) return json(503, statusBody(503, 'ServiceUnavailable', 'fake: this replica is cut off'));
        const rv = lease.metadata.resourceVersion;
        if (rv !== undefined && rv !== current.metadata.resourceVersion) {
          this.leaseConflicts++;
          return json(409, statusBody(409, 'Conflict', `Operation cannot be fulfilled on leases.coordination.k8s.io "${name}": the object has been modified; please apply your changes to the latest version and try again`));
        }
        const stored = { ...lease, apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { ...current.metadata, resourceVersion: String(++this.rv) } };
        this.leases.set(key, stored);
        return json(200, stored);
      }
      return json(405, statusBody(405, 'MethodNotAllowed', `${method} ${p}`));
    }
    if (method === 'GET' && p === '/api/v1/nodes') {
      return json(200, { apiVersion: 'v1', kind: 'NodeList', metadata: { resourceVersion: String(this.rv) }, items: [...this.nodes.values()] });
    }
    if (method === 'GET' && (m = /^\/api\/v1\/namespaces\/([^/]+)\/secrets\/([^/]+)$/.exec(p)) !== null) {
      const secret = this.secrets.get(`${m[1]}/${m[2]}`);
      return secret === undefined ? notFound(`secrets "${m[2]}"`) : json(200, secret);
    }
    return notFound(p);
  }

  private watch(kind: FakeJobKind, namespace: string | undefined, url: URL, res: ServerResponse): void {
    const from = Number(url.searchParams.get('resourceVersion') ?? '0');
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    const oldest = this.events[0]?.rv ?? this.rv + 1;
    if (from !== 0 && from < oldest - 1 && this.events.length >= MAX_EVENTS) {
      res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'too old resource version', reason: 'Expired', code: 410 } })}\n`);
      return;
    }
    const w: Watcher = { kind, namespace, res };
    for (const e of this.events) if (e.rv > from && e.object.kind === kind && (namespace === undefined || e.object.metadata.namespace === namespace)) this.send(w, e);
    this.watchers.add(w);
    const timeoutSeconds = Number(url.searchParams.get('timeoutSeconds') ?? '0');
    const timer = timeoutSeconds > 0 ? setTimeout(() => res.end(), timeoutSeconds * 1000) : undefined;
    timer?.unref();
    res.on('close', () => {
      clearTimeout(timer);
      this.watchers.delete(w);
    });
  }
}

/** A labelSelector query (`a=b,c!=d,e in (f,g),h notin (i),j,!k`) as a predicate; undefined when it does not parse. */
function parseLabelSelector(text: string): ((labels: Record<string, string>) => boolean) | undefined {
  const terms: Array<(labels: Record<string, string>) => boolean> = [];
  // Split on commas outside parentheses.
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const c of text) {
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (c === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += c;
  }
  if (current.trim() !== '') parts.push(current);
  for (const raw of parts) {
    const part = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^([^\s=!(),]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part)) !== null) {
      const [, key = '', op, list = ''] = m;
      const values = list.split(',').map((v) => v.trim());
      terms.push(op === 'in' ? (l) => Object.hasOwn(l, key) && values.includes(l[key] as string) : (l) => !Object.hasOwn(l, key) || !values.includes(l[key] as string));
    } else if ((m = /^([^\s=!(),]+)\s*!=\s*([^\s=!(),]*)$/.exec(part)) !== null) {
      const [, key = '', value] = m;
      terms.push((l) => l[key] !== value);
    } else if ((m = /^([^\s=!(),]+)\s*==?\s*([^\s=!(),]*)$/.exec(part)) !== null) {
      const [, key = '', value] = m;
      terms.push((l) => l[key] === value);
    } else if ((m = /^!([^\s=!(),]+)$/.exec(part)) !== null) {
      const key = m[1] as string;
      terms.push((l) => !Object.hasOwn(l, key));
    } else if ((m = /^([^\s=!(),]+)$/.exec(part)) !== null) {
      const key = m[1] as string;
      terms.push((l) => Object.hasOwn(l, key));
    } else return undefined;
  }
  return (labels) => terms.every((t) => t(labels));
}
