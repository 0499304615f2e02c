import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

/**
 * A FAKE Kubernetes API server, for tests only: no real API server can run on
 * these machines. It implements just what the ImagePullJob controller calls,
 * with the real JSON shapes: list and watch (chunked JSON lines, from a
 * resourceVersion) of shoal.io/v1alpha1 ImagePullJobs, merge-PATCH of their
 * status subresource, DELETE, list of Nodes, GET of Secrets. Tests add and
 * change objects and read back every status patch.
 */

const GROUP_VERSION = 'shoal.io/v1alpha1';
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
  };
  spec?: unknown;
  status?: Record<string, unknown>;
  type?: string;
  data?: Record<string, string>;
}

interface Watcher {
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
  private readonly jobs = new Map<string, FakeObject>();
  private readonly nodes = new Map<string, FakeObject>();
  private readonly secrets = new Map<string, FakeObject>();
  private readonly events: Event[] = [];
  private readonly watchers = new Set<Watcher>();
  private readonly patches = new Map<string, Array<Record<string, unknown>>>();
  /** The next N list requests for ImagePullJobs answer 500 (to test the controller's backoff). */
  failLists = 0;

  private constructor(server: Server, url: string) {
    this.server = server;
    this.url = url;
    server.on('request', (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(statusBody(500, 'InternalError', String(err)));
      });
    });
  }

  static async start(): Promise<FakeKubeApi> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return new FakeKubeApi(server, `http://127.0.0.1:${port}`);
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

  createJob(namespace: string, name: string, spec: unknown): FakeObject {
    const key = `${namespace}/${name}`;
    if (this.jobs.has(key)) throw new Error(`${key} exists`);
    const obj: FakeObject = {
      apiVersion: GROUP_VERSION,
      kind: 'ImagePullJob',
      metadata: { name, namespace, uid: randomUUID(), resourceVersion: '', generation: 1, creationTimestamp: new Date().toISOString() },
      spec: clone(spec),
    };
    this.jobs.set(key, obj);
    this.emit('ADDED', obj);
    return clone(obj);
  }

  /** A new spec: generation goes up, as the API server does for spec changes. */
  updateJobSpec(namespace: string, name: string, spec: unknown): void {
    const obj = this.mustGetJob(namespace, name);
    obj.spec = clone(spec);
    obj.metadata.generation++;
    this.emit('MODIFIED', obj);
  }

  deleteJob(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const obj = this.jobs.get(key);
    if (obj === undefined) return;
    this.jobs.delete(key);
    this.emit('DELETED', obj);
  }

  getJob(namespace: string, name: string): FakeObject | undefined {
    const obj = this.jobs.get(`${namespace}/${name}`);
    return obj === undefined ? undefined : clone(obj);
  }

  /** Every status merge-patch body the client sent for this job, in order. */
  statusPatches(namespace: string, name: string): Array<Record<string, unknown>> {
    return clone(this.patches.get(`${namespace}/${name}`) ?? []);
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

  private mustGetJob(namespace: string, name: string): FakeObject {
    const obj = this.jobs.get(`${namespace}/${name}`);
    if (obj === undefined) throw new Error(`no ImagePullJob ${namespace}/${name}`);
    return obj;
  }

  private emit(type: Event['type'], obj: FakeObject): void {
    obj.metadata.resourceVersion = String(++this.rv);
    const event: Event = { rv: this.rv, type, object: clone(obj) };
    this.events.push(event);
    if (this.events.length > MAX_EVENTS) this.events.shift();
    for (const w of this.watchers) if (w.namespace === undefined || w.namespace === obj.metadata.namespace) this.send(w, event);
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

    // ImagePullJobs: list or watch, all namespaces or one.
    if (method === 'GET' && (m = /^\/apis\/shoal\.io\/v1alpha1(?:\/namespaces\/([^/]+))?\/imagepulljobs$/.exec(p)) !== null) {
      const namespace = m[1];
      if (url.searchParams.get('watch') === 'true') return this.watch(namespace, url, res);
      if (this.failLists > 0) {
        this.failLists--;
        return json(500, statusBody(500, 'InternalError', 'fake: list failure asked for by the test'));
      }
      const items = [...this.jobs.values()].filter((j) => namespace === undefined || j.metadata.namespace === namespace);
      return json(200, { apiVersion: GROUP_VERSION, kind: 'ImagePullJobList', metadata: { resourceVersion: String(this.rv) }, items });
    }
    if ((m = /^\/apis\/shoal\.io\/v1alpha1\/namespaces\/([^/]+)\/imagepulljobs\/([^/]+)(\/status)?$/.exec(p)) !== null) {
      const [, namespace = '', name = '', sub] = m;
      const obj = this.jobs.get(`${namespace}/${name}`);
      if (obj === undefined) return notFound(`imagepulljobs.shoal.io "${name}"`);
      if (method === 'GET') return json(200, obj);
      if (method === 'PATCH' && sub === '/status') {
        if (req.headers['content-type'] !== 'application/merge-patch+json') return json(415, statusBody(415, 'UnsupportedMediaType', `fake: only merge patches, not ${String(req.headers['content-type'])}`));
        const patch = JSON.parse(body) as Record<string, unknown>;
        const list = this.patches.get(`${namespace}/${name}`) ?? [];
        list.push(patch);
        this.patches.set(`${namespace}/${name}`, list);
        // The status subresource ignores everything but status.
        obj.status = mergePatch(obj.status ?? {}, patch.status ?? {}) as Record<string, unknown>;
        this.emit('MODIFIED', obj);
        return json(200, obj);
      }
      if (method === 'DELETE' && sub === undefined) {
        this.deleteJob(namespace, name);
        return json(200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, group: 'shoal.io', kind: 'imagepulljobs', uid: obj.metadata.uid } });
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

  private watch(namespace: string | undefined, url: URL, res: ServerResponse): void {
    const from = Number(url.searchParams.get('resourceVersion') ?? '0');
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    const oldest = this.events[0]?.rv ?? this.rv + 1;
    if (from !== 0 && from < oldest - 1 && this.events.length >= MAX_EVENTS) {
      res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'too old resource version', reason: 'Expired', code: 410 } })}\n`);
      return;
    }
    const w: Watcher = { namespace, res };
    for (const e of this.events) if (e.rv > from && (namespace === undefined || e.object.metadata.namespace === namespace)) this.send(w, e);
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
