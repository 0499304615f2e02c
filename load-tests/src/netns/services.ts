/**
 * The real components, each started inside a host's namespace: docker-registry (origin
 * or pull-through cache), `shoal supernode`, `shoal node`. The testkit starts these on
 * 127.0.0.1 of the root namespace; here they listen on the host's LAN address.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isBlobGet, minimalEnv, parseRegistryLogLine, registryConfig, spawnProcess, waitFor, type ManagedProcess } from '@shoal/testkit';
import { httpGetIn, inNetns } from './exec.js';
import type { Host } from './topology.js';
import { NODE_FLAGS } from '@shoal/cli';

/** The repository's own `shoal` (built by `tsc -b`); `--shoal` picks another build. */
export const SHOAL = fileURLToPath(new URL('../../../services/shoal/bin/shoal.js', import.meta.url));
export const REGISTRY_PORT = 5000;
export const SUPERNODE_PORT = 8002;
export const PROXY_LISTEN = '127.0.0.1:65001';
export const PEER_PORT = 65002;
const READY_TIMEOUT_MS = 60_000;

export interface NsProcess {
  host: Host;
  process: ManagedProcess;
}

export async function startRegistryIn(host: Host, dir: string, options: { proxyRemoteUrl?: string; name: string }): Promise<NsProcess> {
  await mkdir(join(dir, 'data'), { recursive: true });
  const configPath = join(dir, 'config.yml');
  await writeFile(configPath, registryConfig({
      addr: `0.0.0.0:${REGISTRY_PORT}`,
      dataDir: join(dir, 'data'),
      ...(options.proxyRemoteUrl === undefined ? {} : { proxy: { url: options.proxyRemoteUrl } }),
    }));
  const c = inNetns(host.ns, 'docker-registry', ['serve', configPath]);
  // distribution reads every REGISTRY_* variable as configuration: give it nothing.
  const process = await spawnProcess({ name: options.name, command: c.command, args: c.args, cwd: dir, env: minimalEnv(), logDir: dir });
  await waitFor(async () => (await httpGetIn(host.ns, `http://127.0.0.1:${REGISTRY_PORT}/v2/`)).status === 200, {
    process,
    description: `${options.name} in ${host.ns}`,
    timeoutMs: READY_TIMEOUT_MS,
    intervalMs: 200,
  });
  return { host, process };
}

/** SHOAL_BENCH_NODE_ARGS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`): more node flags for the Shoal processes. */
function benchNodeArgs(): string[] {
  return (process.env.SHOAL_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
}

/** `nodeBinary`: the Node.js that runs shoal (this process's, or the image's: lib/image-runtime.ts). */
export async function startSupernodeIn(host: Host, dir: string, registryHost: string, shoalBin = SHOAL, nodeBinary = process.execPath, extraEnv: Record<string, string> = {}): Promise<NsProcess> {
  await mkdir(dir, { recursive: true });
  const c = inNetns(host.ns, nodeBinary, [...NODE_FLAGS, ...benchNodeArgs(), shoalBin, 'supernode']);
  const proc = await spawnProcess({
    name: 'supernode',
    command: c.command,
    args: c.args,
    env: minimalEnv({
      SHOAL_LISTEN: `0.0.0.0:${SUPERNODE_PORT}`,
      SHOAL_DATA: join(dir, 'data'),
      SHOAL_PLAIN_HTTP: registryHost,
      SHOAL_LOG_LEVEL: process.env.SHOAL_BENCH_LOG_LEVEL ?? 'warn',
      ...extraEnv,
    }),
    logDir: dir,
  });
  await waitFor(async () => (await httpGetIn(host.ns, `http://127.0.0.1:${SUPERNODE_PORT}/readyz`)).status === 200, {
    process: proc,
    description: `supernode in ${host.ns}`,
    timeoutMs: READY_TIMEOUT_MS,
    intervalMs: 200,
  });
  return { host, process: proc };
}

export async function startShoalNodeIn(
  host: Host,
  dir: string,
  o: { supernodeUrl: string; registryHost: string; containerdSocket: string; shoalBin?: string; nodeBinary?: string },
): Promise<NsProcess> {
  await mkdir(dir, { recursive: true });
  const c = inNetns(host.ns, o.nodeBinary ?? process.execPath, [...NODE_FLAGS, ...benchNodeArgs(), o.shoalBin ?? SHOAL, 'node']);
  const proc = await spawnProcess({
    name: `node-${host.name}`,
    command: c.command,
    args: c.args,
    env: minimalEnv({
      SHOAL_SUPERNODE: o.supernodeUrl,
      SHOAL_PEER_LISTEN: `0.0.0.0:${PEER_PORT}`,
      SHOAL_ADVERTISE: `http://${host.ip}:${PEER_PORT}`,
      // Loopback is per namespace: every node has its own 127.0.0.1:65001.
      SHOAL_PROXY_LISTEN: PROXY_LISTEN,
      SHOAL_PLAIN_HTTP: o.registryHost,
      SHOAL_DATA: join(dir, 'data'),
      SHOAL_CONTAINERD_SOCKET: o.containerdSocket,
      SHOAL_LOG_LEVEL: process.env.SHOAL_BENCH_LOG_LEVEL ?? 'warn',
    }),
    logDir: dir,
  });
  return { host, process: proc };
}

export async function waitNodeReady(n: NsProcess): Promise<void> {
  await waitFor(async () => (await httpGetIn(n.host.ns, `http://${PROXY_LISTEN}/readyz`)).status === 200, {
    process: n.process,
    description: `shoal node in ${n.host.ns}`,
    timeoutMs: READY_TIMEOUT_MS,
    intervalMs: 250,
  });
}

/** Peers the supernode knows (its status API), asked from its own namespace. */
export async function supernodePeerCount(host: Host): Promise<number> {
  const r = await httpGetIn(host.ns, `http://127.0.0.1:${SUPERNODE_PORT}/api/v1/status`);
  if (r.status !== 200) return -1;
  const status = JSON.parse(r.body) as { peers?: unknown[] };
  return Array.isArray(status.peers) ? status.peers.length : -1;
}

/** The supernode's piece sends so far: all, and those passed on while the piece still arrived (cut-through). */
export async function supernodePieceSends(host: Host): Promise<{ served: number; cutThrough: number }> {
  const r = await httpGetIn(host.ns, `http://127.0.0.1:${SUPERNODE_PORT}/metrics`);
  const value = (metric: string): number => Number(new RegExp(`^${metric} ([0-9.e+]+)$`, 'm').exec(r.body)?.[1] ?? 0);
  return { served: value('shoal_supernode_pieces_served_total'), cutThrough: value('shoal_supernode_pieces_cut_through_total') };
}

export interface ProxyStats {
  /** `shoal_proxy_blob_bytes_total` by `source`: where the bytes sent to containerd came from. */
  bytesBySource: Record<string, number>;
  /** `shoal_proxy_fallbacks_total` by `reason`: blobs the swarm could not serve in time. */
  fallbacksByReason: Record<string, number>;
  /** Pieces the node's peer sent to other peers, and of them the ones it relayed while they still arrived (the peer shares the proxy's metrics). */
  piecesServed: number;
  piecesRelayed: number;
}

function counterValue(text: string, metric: string): number {
  const m = new RegExp(`^${metric} ([0-9.e+]+)$`, 'm').exec(text);
  return m === null ? 0 : Number(m[1]);
}

function sumByLabel(text: string, metric: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  const re = new RegExp(`^${metric}\\{[^}]*${label}="([^"]+)"[^}]*\\} ([0-9.e+]+)$`, 'gm');
  for (const m of text.matchAll(re)) {
    const key = m[1] as string;
    out[key] = (out[key] ?? 0) + Number(m[2]);
  }
  return out;
}

/** One node's proxy metrics, scraped in its namespace. */
export async function proxyStats(host: Host): Promise<ProxyStats> {
  const r = await httpGetIn(host.ns, `http://${PROXY_LISTEN}/metrics`);
  return {
    bytesBySource: sumByLabel(r.body, 'shoal_proxy_blob_bytes_total', 'source'),
    fallbacksByReason: sumByLabel(r.body, 'shoal_proxy_fallbacks_total', 'reason'),
    piecesServed: counterValue(r.body, 'shoal_peer_pieces_served_total'),
    piecesRelayed: counterValue(r.body, 'shoal_peer_pieces_relayed_total'),
  };
}

/** What the counters of `after` gained since `before` (one node's, around one pull). */
export function proxyStatsSince(after: ProxyStats, before: ProxyStats): ProxyStats {
  const since = (a: Record<string, number>, b: Record<string, number>): Record<string, number> =>
    Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v - (b[k] ?? 0)]).filter(([, v]) => v !== 0));
  return {
    bytesBySource: since(after.bytesBySource, before.bytesBySource),
    fallbacksByReason: since(after.fallbacksByReason, before.fallbacksByReason),
    piecesServed: after.piecesServed - before.piecesServed,
    piecesRelayed: after.piecesRelayed - before.piecesRelayed,
  };
}

export interface BlobServed {
  remoteAddr: string;
  digest: string | undefined;
  bytes: number;
  /** When the registry finished sending it, and when the GET began (its log's `time` less `http.response.duration`), Unix ms; NaN if the log line lacks them. */
  endedAtUnixMs: number;
  startedAtUnixMs: number;
}

/**
 * Blob GETs a registry answered with a body (200, or 206 for a ranged GET: a resumed
 * fetch), from its JSON access log: who asked and how many body bytes went out
 * (`http.response.written`).
 */
export async function blobsServed(reg: NsProcess): Promise<BlobServed[]> {
  const out: BlobServed[] = [];
  for (const line of (await reg.process.stderr()).split('\n')) {
    const r = parseRegistryLogLine(line);
    if (r === undefined || !isBlobGet(r) || (r.status !== 200 && r.status !== 206)) continue;
    const endedAtUnixMs = r.time === undefined ? Number.NaN : Date.parse(r.time);
    out.push({ remoteAddr: r.remoteAddr ?? '?', digest: r.digest, bytes: r.writtenBytes ?? 0, endedAtUnixMs, startedAtUnixMs: endedAtUnixMs - (r.durationMs ?? Number.NaN) });
  }
  return out;
}
