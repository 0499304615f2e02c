/**
 * Offline validation of rendered objects against Kubernetes' OpenAPI schemas
 * (npm kubernetes-models, and @kubernetes-models/prometheus-operator for the
 * monitoring.coreos.com kinds). Their compiled validators accept unknown fields,
 * as `kubectl apply` without --validate=strict would; the API server's strict
 * field validation refuses them. So each object is validated through a Proxy that
 * records every property the validator looks at: a property it never looked at,
 * on an object whose keys it did not enumerate (maps like labels are enumerated),
 * is a field the schema does not have.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { K8sObject } from './helm.js';

type Validate = ((data: unknown) => boolean) & { errors?: Array<{ instancePath: string; message?: string; keyword: string; params: unknown }> | null };

const require = createRequire(import.meta.url);
const validators = new Map<string, Promise<Validate>>();

/** The model module of a kind: kubernetes-models/<group or ''>/<version>/<Kind>.js. */
function modelPath(apiVersion: string, kind: string): string {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (group === 'monitoring.coreos.com') return join(dirname(require.resolve('@kubernetes-models/prometheus-operator/package.json')), group, version ?? '', `${kind}.js`);
  const root = dirname(require.resolve('kubernetes-models/package.json'));
  return group === '' ? join(root, version ?? '', `${kind}.js`) : join(root, group ?? '', version ?? '', `${kind}.js`);
}

/** The raw schema validator a model class is built on (its `../../_schemas/X.js` import). */
function validatorFor(apiVersion: string, kind: string): Promise<Validate> {
  const key = `${apiVersion} ${kind}`;
  let v = validators.get(key);
  if (v === undefined) {
    v = (async () => {
      const file = modelPath(apiVersion, kind);
      const source = await readFile(file, 'utf8').catch(() => {
        throw new Error(`no schema for ${kind} ${apiVersion} (${file})`);
      });
      const m = /from\s*"(\.{1,2}\/[^"]*_schemas\/[^"]+\.js)"/.exec(source);
      if (m === null) throw new Error(`${file}: no schema import`);
      const mod = (await import(join(dirname(file), m[1] ?? ''))) as { validate: Validate };
      return mod.validate;
    })();
    validators.set(key, v);
  }
  return v;
}

interface Seen {
  path: string;
  known: Set<string>;
  enumerated: boolean;
}

/** Problems of one object: schema errors and unknown fields, each with its path. */
export async function schemaProblems(object: K8sObject): Promise<string[]> {
  const validate = await validatorFor(object.apiVersion, object.kind);
  const seen = new Map<object, Seen>();
  const proxies = new WeakMap<object, object>();
  const wrap = (value: unknown, path: string): unknown => {
    if (typeof value !== 'object' || value === null) return value;
    const cached = proxies.get(value);
    if (cached !== undefined) return cached;
    const record: Seen = { path, known: new Set(), enumerated: false };
    seen.set(value, record);
    const proxy = new Proxy(value, {
      get(target, key, receiver) {
        const v = Reflect.get(target, key, receiver) as unknown;
        if (typeof key !== 'string') return v;
        record.known.add(key);
        return Object.prototype.hasOwnProperty.call(target, key) ? wrap(v, `${path}.${key}`) : v;
      },
      has(target, key) {
        if (typeof key === 'string') record.known.add(key);
        return Reflect.has(target, key);
      },
      ownKeys(target) {
        record.enumerated = true;
        return Reflect.ownKeys(target);
      },
    });
    proxies.set(value, proxy);
    return proxy;
  };
  const where = `${object.kind}/${object.metadata.name}`;
  const problems: string[] = [];
  if (!validate(wrap(object, ''))) for (const e of validate.errors ?? []) problems.push(`${where}: ${e.instancePath || '/'} ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`);
  const walk = (value: unknown): void => {
    if (typeof value !== 'object' || value === null) return;
    const record = seen.get(value);
    if (record === undefined) return; // a subtree the schema leaves free (e.g. x-kubernetes-preserve-unknown-fields)
    for (const [key, child] of Object.entries(value)) {
      if (!Array.isArray(value) && !record.enumerated && !record.known.has(key)) problems.push(`${where}: unknown field ${record.path}.${key}`);
      walk(child);
    }
  };
  walk(object);
  return problems;
}
