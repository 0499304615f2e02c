import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import { request } from 'undici';
import {
  API_PREFIX,
  ConfigError,
  HEADER,
  isNodeName,
  MAX_PREHEAT_NODES,
  parseImageReference,
  parseWire,
  isPlatformText,
  PreheatJobSchema,
  readBounded,
  ShoalError,
  type FlagSpecs,
  type PreheatJob,
  type PreheatNodes,
  type PreheatRequest,
} from '@shoal/core';
import { DEFAULT_SUPERNODE_URL, readToken, tokenFileFlag } from '../flags.js';
import type { CommandSpec } from '../command.js';
import { PreheatError } from '../errors.js';

/** How often the job's status is asked for. Milliseconds. */
export const PREHEAT_POLL_INTERVAL_MS = 500;
/** Status requests in a row that may fail (supernode briefly unreachable) before the command gives up. */
export const MAX_POLL_FAILURES = 10;
/** A job status lists every blob; larger answers are refused rather than buffered. Bytes: 4 MiB. */
const MAX_ANSWER_BYTES = 4 * 1024 * 1024;
const MIB = 1024 * 1024;

export interface PreheatOptions {
  supernodeUrl: string;
  image: string;
  /** `os/arch[/variant]`; empty: every platform of an index. */
  platforms: readonly string[];
  /** Also fill these nodes' own stores (`all`: every node registered now). */
  nodes?: PreheatNodes | undefined;
  /** With nodes: then have each node's containerd pull the image through CRI with this policy; undefined: stores only. */
  runtimePull?: 'Always' | 'IfNotPresent' | undefined;
  /** The cluster token. */
  token: string | undefined;
  /** The registry credential (an Authorization header value), passed to the supernode for its registry requests. */
  registryAuthorization?: string | undefined;
  /** Called with every status polled, the first being the job as started. */
  onStatus?: (job: PreheatJob) => void;
  signal?: AbortSignal;
}

async function readAnswer(body: Readable): Promise<string> {
  return (await readBounded(body, MAX_ANSWER_BYTES, () => new PreheatError(`supernode answer larger than ${MAX_ANSWER_BYTES} bytes`))).toString('utf8');
}

/** `message (status code)` from the supernode's `{ code, message }` error body, or the raw text. */
function errorText(status: number, text: string): string {
  try {
    const parsed = JSON.parse(text) as { code?: unknown; message?: unknown };
    if (typeof parsed.message === 'string') {
      const hint = status === 401 ? ' (the cluster token: --token-file)' : '';
      return `${parsed.message}${hint} [${typeof parsed.code === 'string' ? parsed.code : status}]`;
    }
  } catch {
    // not JSON: show it as it is
  }
  return `${status} ${text.slice(0, 300)}`;
}

/**
 * Asks a supernode to preheat an image and follows the job to its end.
 * Resolves with the final status (done or failed); rejects when the
 * supernode refuses the job or cannot be reached.
 */
export async function preheatImage(options: PreheatOptions): Promise<PreheatJob> {
  const base = options.supernodeUrl.replace(/\/+$/, '');
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.token !== undefined) headers[HEADER.token] = options.token;
  if (options.registryAuthorization !== undefined) headers[HEADER.registryAuthorization] = options.registryAuthorization;
  const payload: PreheatRequest = { image: options.image };
  if (options.platforms.length > 0) payload.platforms = [...options.platforms];
  if (options.nodes !== undefined) payload.nodes = options.nodes === 'all' ? 'all' : [...options.nodes];
  if (options.nodes !== undefined && options.runtimePull !== undefined) payload.runtimePull = options.runtimePull;

  let job: PreheatJob;
  try {
    const res = await request(`${base}${API_PREFIX}/preheat`, { method: 'POST', headers, body: JSON.stringify(payload), signal: options.signal ?? null });
    const text = await readAnswer(res.body);
    if (res.statusCode !== 202) throw new PreheatError(`supernode ${base} refused to preheat ${options.image}: ${errorText(res.statusCode, text)}`);
    job = parseWire(PreheatJobSchema, JSON.parse(text), 'preheat job');
  } catch (err) {
    if (err instanceof ShoalError) throw err;
    throw new PreheatError(`cannot reach supernode ${base}: ${err instanceof Error ? err.message : String(err)}`);
  }
  options.onStatus?.(job);

  let failures = 0;
  while (job.state === 'running') {
    await sleep(PREHEAT_POLL_INTERVAL_MS, undefined, { signal: options.signal });
    try {
      const res = await request(`${base}${API_PREFIX}/preheat/${job.id}`, { headers, signal: options.signal ?? null });
      const text = await readAnswer(res.body);
      if (res.statusCode === 404) throw new PreheatError(`supernode ${base} no longer knows preheat job ${job.id} (restarted?): ${errorText(res.statusCode, text)}`);
      if (res.statusCode !== 200) throw new PreheatError(`supernode ${base} answered ${errorText(res.statusCode, text)} for preheat job ${job.id}`);
      job = parseWire(PreheatJobSchema, JSON.parse(text), 'preheat job');
      failures = 0;
    } catch (err) {
      if (err instanceof ShoalError || options.signal?.aborted === true) throw err;
      if (++failures >= MAX_POLL_FAILURES) {
        throw new PreheatError(`supernode ${base} unreachable while following preheat job ${job.id}: ${err instanceof Error ? err.message : String(err)}`);
      }
      continue;
    }
    options.onStatus?.(job);
  }
  return job;
}

function mib(bytes: number): string {
  return (bytes / MIB).toFixed(1);
}

export const preheatFlags = {
  supernode: { kind: 'url', help: 'supernode URL', default: DEFAULT_SUPERNODE_URL },
  platform: { kind: 'stringList', help: 'OS/ARCH[/VARIANT] to warm from a multi-arch index, repeatable (none: every platform in it)', default: [] },
  nodes: { kind: 'stringList', help: "all | NAME,...: also fill these nodes' own caches (node names as `shoal node --node-name`), then have each node's containerd pull the image through CRI" },
  imagePullPolicy: { kind: 'string', help: 'with --nodes: Always (containerd pulls) | IfNotPresent (containerd pulls only an image it lacks) | None (fill the nodes\' caches only)', default: 'Always' },
  registryCredentialsFile: { kind: 'path', help: 'file holding USER:PASSWORD for a private registry (sent to the supernode, which fetches with it)' },
  tokenFile: tokenFileFlag,
} satisfies FlagSpecs;

async function readRegistryCredentials(path: string | undefined): Promise<string | undefined> {
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = (await readFile(path, 'utf8')).trim();
  } catch (err) {
    throw new ConfigError([`--registry-credentials-file: cannot read ${path}: ${(err as Error).message}`]);
  }
  if (!text.includes(':')) throw new ConfigError([`--registry-credentials-file: ${path} must hold USER:PASSWORD`]);
  return `Basic ${Buffer.from(text).toString('base64')}`;
}

/** `--nodes`: `all`, or node names (each a Kubernetes node name). */
export function parseNodesFlag(values: readonly string[] | undefined, problems: string[]): PreheatNodes | undefined {
  if (values === undefined) return undefined;
  if (values.length === 1 && values[0] === 'all') return 'all';
  if (values.length === 0) {
    problems.push('--nodes: expected all or node names (NAME,...)');
    return undefined;
  }
  if (values.includes('all')) problems.push('--nodes: all stands alone, not among node names');
  if (values.length > MAX_PREHEAT_NODES) problems.push(`--nodes: at most ${MAX_PREHEAT_NODES} node names`);
  for (const v of values.slice(0, 20)) if (v !== 'all' && !isNodeName(v)) problems.push(`--nodes: ${JSON.stringify(v.slice(0, 300))} is not a Kubernetes node name (lowercase RFC 1123 subdomain)`);
  return [...new Set(values)];
}

/** Per-node progress: each node's counts for a few nodes, counts by state for many. */
function nodesProgress(job: PreheatJob): string {
  const nodes = job.nodes;
  if (nodes === undefined) return '';
  if (nodes.length === 0) return '; no nodes registered';
  if (nodes.length <= 8) return `; nodes: ${nodes.map((n) => `${n.name} ${n.blobsDone}/${n.blobsTotal}${n.bytesTotal === undefined ? '' : ` (${mib(n.bytesDone ?? 0)}/${mib(n.bytesTotal)} MiB)`}${n.runtime === undefined || n.runtime === 'waiting' ? '' : ` runtime ${n.runtime}`}${n.state === 'failed' ? ' failed' : ''}`).join(', ')}`;
  const count = (state: string): number => nodes.filter((n) => n.state === state).length;
  return `; nodes: ${count('done')} done, ${count('running') + count('pending')} running, ${count('failed')} failed of ${nodes.length}`;
}

/** `shoal preheat`: the command-table entry (main.ts registers it). */
export const preheatCommand: CommandSpec<typeof preheatFlags> = {
  summary: "warm the supernode's cache with an image's blobs (every platform of an index, or --platform), and with --nodes the nodes' own caches",
  positionals: { min: 1, max: 1, names: 'IMAGE' },
  flags: preheatFlags,
  async run(c, [imageText]) {
    const problems: string[] = [];
    const nodes = parseNodesFlag(c.nodes, problems);
    const policy = c.imagePullPolicy;
    if (policy !== 'Always' && policy !== 'IfNotPresent' && policy !== 'None') problems.push(`--image-pull-policy: expected Always, IfNotPresent or None, got ${JSON.stringify(policy.slice(0, 40))}`);
    const platforms = c.platform;
    for (const p of platforms) if (!isPlatformText(p)) problems.push(`--platform: expected OS/ARCH[/VARIANT] in lowercase (e.g. linux/amd64), got ${JSON.stringify(p)}`);
    if (problems.length > 0) throw new ConfigError(problems);
    const image = imageText ?? '';
    parseImageReference(image); // an invalid reference fails here, with its own message
    const token = await readToken(c.tokenFile);
    const registryAuthorization = await readRegistryCredentials(c.registryCredentialsFile);
    const supernodeUrl = c.supernode;

    let shown = '';
    const started = Date.now();
    const final = await preheatImage({
      supernodeUrl,
      image,
      platforms,
      nodes,
      runtimePull: policy === 'Always' || policy === 'IfNotPresent' ? policy : undefined,
      token,
      registryAuthorization,
      onStatus: (job) => {
        if (shown === '') {
          const which = job.platforms.length === 0 ? '' : ` (${job.platforms.join(', ')})`;
          process.stdout.write(`preheating ${job.image}${which} on ${supernodeUrl}: ${job.blobs.length} blobs, ${mib(job.bytesTotal)} MiB, job ${job.id}\n`);
        }
        const done = job.blobs.filter((b) => b.state === 'done').length;
        const line = `  ${done}/${job.blobs.length} blobs, ${mib(job.bytesDone)}/${mib(job.bytesTotal)} MiB${nodesProgress(job)}`;
        if (line !== shown) process.stdout.write(`${line}\n`);
        shown = line;
      },
    });
    const seconds = ((Date.now() - started) / 1000).toFixed(2);
    const finalNodes = final.nodes ?? [];
    if (final.state === 'done') {
      const where = final.nodes === undefined ? '' : ` and in ${finalNodes.length} node${finalNodes.length === 1 ? '' : 's'}${finalNodes.length > 0 && finalNodes.length <= 8 ? ` (${finalNodes.map((n) => n.name).join(', ')})` : ''}`;
      process.stdout.write(`preheated ${final.image}: ${final.blobs.length} blobs, ${mib(final.bytesTotal)} MiB in the supernode's cache${where} (${seconds} s)\n`);
      for (const b of final.tooLarge ?? []) {
        process.stdout.write(`  not preheated: ${b.digest} (${mib(b.sizeBytes)} MiB), larger than the swarm carries; pulls take it from the registry\n`);
      }
      for (const n of finalNodes) {
        if (n.runtime === 'pulled') process.stdout.write(`  ${n.name}: pulled into containerd (k8s.io namespace)\n`);
        else if (n.runtime === 'present') process.stdout.write(`  ${n.name}: already in containerd (IfNotPresent): not pulled\n`);
        else if (n.runtime === 'unavailable') process.stdout.write(`  ${n.name}: in Shoal's store only: ${n.error ?? 'no container runtime socket on the node'}\n`);
      }
      return;
    }
    const failed = final.blobs.filter((b) => b.state === 'failed');
    for (const b of failed) process.stderr.write(`failed ${b.digest} (${mib(b.sizeBytes)} MiB): ${b.error ?? 'unknown error'}\n`);
    const failedNodes = finalNodes.filter((n) => n.state === 'failed');
    for (const n of failedNodes) process.stderr.write(`failed node ${n.name} (${n.blobsDone}/${n.blobsTotal} blobs): ${n.error ?? 'unknown error'}\n`);
    const reasons: string[] = [];
    if (failed.length > 0) reasons.push(`${failed.length} of ${final.blobs.length} blobs could not be fetched into the supernode's cache`);
    if (failedNodes.length > 0) reasons.push(`${failedNodes.length} of ${finalNodes.length} nodes failed (${failedNodes.slice(0, 20).map((n) => n.name).join(', ')}${failedNodes.length > 20 ? ', ...' : ''})`);
    throw new PreheatError(`preheat of ${final.image} failed: ${reasons.join('; ')}`);
  },
};
