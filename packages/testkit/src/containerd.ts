/**
 * Real containerd instances for tests (containerd 1.6 from Debian), several side by side.
 *
 * Each instance has its own temp dir holding `root`, `state`, the gRPC socket (ttrpc is
 * `<socket>.ttrpc`), the `opt` plugin dir (default /opt/containerd), a `certs.d` hosts
 * dir and `config.toml`. The CRI plugin is disabled unless `cri` is given: it binds a
 * streaming port (here 127.0.0.1, port 0) and reads CNI paths (here empty dirs of the
 * instance: containerd logs that no CNI config was found, which the image service does
 * not need). With `cri`, the CRI image service (runtime.v1 ImageService on `socket`)
 * pulls through `<cri.configPath>/<host>/hosts.toml` into the `k8s.io` namespace, as
 * kubelet's pulls do. Nothing else uses a fixed path or port
 * (debug and metrics addresses are empty by default). Image pulls use `ctr`, which
 * resolves and fetches in the `ctr` process itself (1.6 has no transfer service), so the
 * HTTP requests, and `ctr --debug`'s log of them, come from there.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isDigest, type Digest } from '@shoal/core';
import { makeTempDir, minimalEnv, removeTempDir, runCommand, spawnProcess, waitFor, type ManagedProcess, type RunResult } from './processes.js';
import type { Credentials } from './registry.js';

export interface StartContainerdOptions {
  /** Used in temp dir and log names. @default 'containerd' */
  name?: string;
  /** Appended to the generated config.toml (TOML, version 2). */
  extraConfig?: string;
  /** @default 30000 */
  readyTimeoutMs?: number;
  /**
   * Snapshotter for pulls and checks. @default 'overlayfs' when that plugin loaded,
   * else 'native' (overlay cannot stack on an overlay root, as in some CI containers).
   */
  snapshotter?: string;
  /**
   * Run containerd, and every `ctr` command of this instance (so pulls too: ctr 1.6
   * fetches in its own process), inside this network namespace (`ip netns exec`, root
   * only). @default undefined: the caller's namespace
   */
  netns?: string;
  /**
   * Turn the CRI plugin on; `configPath` is its registry `config_path` (a certs.d dir,
   * e.g. what `shoal containerd-config` wrote). @default undefined: CRI disabled
   */
  cri?: { configPath?: string };
}

export interface PullOptions {
  /**
   * `--hosts-dir`: a certs.d directory with `<host>/hosts.toml` files. Undefined uses
   * the instance's own `hostsDir` (empty until a test writes to it); null passes none.
   */
  hostsDir?: string | null;
  /** `--platform`, e.g. `linux/arm64`. */
  platform?: string;
  /** `--user user:password`. */
  user?: string | Credentials;
  /** `--plain-http`: talk HTTP to hosts without a hosts.toml. */
  plainHttp?: boolean;
  /** Run `ctr --debug` so `requests()` can report every HTTP exchange. */
  debug?: boolean;
  /** @default 'default' */
  namespace?: string;
  /** Kill ctr after this long. @default 300000 */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Throw unless ctr exits 0. @default true */
  check?: boolean;
}

/** One HTTP exchange made by ctr during a pull, from `ctr --debug` stderr. */
export interface CtrRequest {
  url: string;
  /** `host:port` of the URL. */
  host: string;
  method: string | undefined;
  /** Undefined when no response arrived (connection error: see `error`). */
  status: number | undefined;
  /** Lower-cased response header names. */
  headers: Record<string, string> | undefined;
  /** Lower-cased request header names (ctr logs only some). */
  requestHeaders: Record<string, string>;
  /** The digest being fetched (absent for tag resolution). */
  digest: Digest | undefined;
  mediaType: string | undefined;
  /** A transport error ctr logged for this host while the request had no response. */
  error: string | undefined;
}

export interface PullResult extends RunResult {
  /** The HTTP exchanges (needs `debug: true`; empty otherwise). */
  requests(): CtrRequest[];
}

export interface RunningContainerd {
  name: string;
  /** The gRPC unix socket (`ctr -a`). */
  socket: string;
  root: string;
  state: string;
  /** A certs.d dir for `<host>/hosts.toml` (see `writeHostsToml`); pull's default. */
  hostsDir: string;
  configPath: string;
  baseDir: string;
  /** The snapshotter ctr uses (see `StartContainerdOptions.snapshotter`). */
  snapshotter: string;
  process: ManagedProcess;
  pull(ref: string, options?: PullOptions): Promise<PullResult>;
  /** Whether the image is known (`ctr images ls -q`). */
  imageExists(ref: string, options?: { namespace?: string }): Promise<boolean>;
  /** Whether all its content is present and unpacked (`ctr images check`). */
  imageUnpacked(ref: string, options?: { namespace?: string }): Promise<boolean>;
  /** Whether all its content is present, unpacked or not (`ctr images check`). */
  imageComplete(ref: string, options?: { namespace?: string }): Promise<boolean>;
  /** Every digest in the content store (`ctr content ls -q`). */
  contentDigests(options?: { namespace?: string }): Promise<Set<Digest>>;
  /** Whether the CRI plugin is on (`StartContainerdOptions.cri`). */
  cri: boolean;
  /**
   * Images in the CRI namespace `k8s.io` (`ctr -n k8s.io images ls`): each name with
   * whether all its content is present and its layers unpacked (`ctr images check`).
   */
  criImages(): Promise<Map<string, { unpacked: boolean }>>;
  /** Run any ctr command against this instance (`ctr -a <socket> ...args`). */
  ctr(args: readonly string[], options?: { timeoutMs?: number }): Promise<RunResult>;
  stop(): Promise<void>;
}

const CTR_TIMEOUT_MS = 300_000;

function tomlString(value: string): string {
  return JSON.stringify(value); // a JSON string is a valid TOML basic string
}

interface CriConfig {
  configPath: string;
  cniDir: string;
  snapshotter: string;
}

function containerdConfig(o: { root: string; state: string; socket: string; opt: string; extra?: string; cri?: CriConfig }): string {
  const cri =
    o.cri === undefined
      ? []
      : [
          '[plugins."io.containerd.grpc.v1.cri"]',
          '  stream_server_address = "127.0.0.1"',
          '  stream_server_port = "0"',
          '  [plugins."io.containerd.grpc.v1.cri".containerd]',
          `    snapshotter = ${tomlString(o.cri.snapshotter)}`,
          '  [plugins."io.containerd.grpc.v1.cri".cni]',
          `    bin_dir = ${tomlString(join(o.cri.cniDir, 'bin'))}`,
          `    conf_dir = ${tomlString(join(o.cri.cniDir, 'conf'))}`,
          '  [plugins."io.containerd.grpc.v1.cri".registry]',
          `    config_path = ${tomlString(o.cri.configPath)}`,
          '',
        ];
  return [
    'version = 2',
    `root = ${tomlString(o.root)}`,
    `state = ${tomlString(o.state)}`,
    o.cri === undefined ? 'disabled_plugins = ["io.containerd.grpc.v1.cri"]' : '',
    '',
    '[grpc]',
    `  address = ${tomlString(o.socket)}`,
    '',
    '[ttrpc]',
    `  address = ${tomlString(`${o.socket}.ttrpc`)}`,
    '',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${tomlString(o.opt)}`,
    '',
    ...cri,
    o.extra ?? '',
    '',
  ].join('\n');
}

/**
 * Parses one logrus text-format line (`key=value key="quoted value" ...`) into fields.
 * Quoted values are Go `strconv.Quote` output, which JSON.parse reads in practice.
 */
export function parseLogfmt(line: string): Map<string, string> {
  const fields = new Map<string, string>();
  const re = /([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)/g;
  for (const m of line.matchAll(re)) {
    const key = m[1] as string;
    const raw = m[2] ?? '';
    let value = raw;
    if (raw.startsWith('"')) {
      try {
        value = JSON.parse(raw) as string;
      } catch {
        value = raw.slice(1, -1);
      }
    }
    fields.set(key, value);
  }
  return fields;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '';
  }
}

/**
 * Reads the HTTP exchanges from `ctr --debug` stderr (containerd 1.6, logrus text
 * format, remotes/docker/resolver.go). Per request ctr logs, before sending:
 *   level=debug msg="do request" digest="sha256:…" mediatype=… request.header.accept="…"
 *     request.header.user-agent=containerd/1.6.20~ds1 request.method=GET size=… url="http://…"
 * and, for any response (whatever its status):
 *   level=debug msg="fetch response received" digest=… response.header.content-length=…
 *     response.header.x-shoal-source=peer response.status="200 OK" url="http://…"
 * (tag resolution has host=… instead of digest=…; header names are lower-cased; a
 * header with several values is logged as `response.header.x="[a b]"`). When the
 * connection fails there is no response line. For tag resolution ctr then logs
 *   level=info msg="trying next host" error="failed to do request: Head \"http://…\": dial tcp …" host=…
 * (kept in `error`); for fetches (manifest by digest, blobs) nothing at all is logged
 * before it silently tries the next host: such requests have neither status nor error.
 * Requests are matched to responses by URL, oldest unanswered first.
 */
export function parseCtrDebugLog(stderr: string): CtrRequest[] {
  const requests: CtrRequest[] = [];
  for (const line of stderr.split('\n')) {
    if (!line.includes('msg=')) continue;
    const f = parseLogfmt(line);
    const msg = f.get('msg');
    const url = f.get('url');
    if (msg === 'do request' && url !== undefined) {
      const requestHeaders: Record<string, string> = {};
      for (const [k, v] of f) if (k.startsWith('request.header.')) requestHeaders[k.slice('request.header.'.length)] = v;
      const digest = f.get('digest');
      requests.push({
        url,
        host: hostOf(url),
        method: f.get('request.method'),
        status: undefined,
        headers: undefined,
        requestHeaders,
        digest: digest !== undefined && isDigest(digest) ? digest : undefined,
        mediaType: f.get('mediatype'),
        error: undefined,
      });
    } else if (msg === 'fetch response received' && url !== undefined) {
      const pending = requests.find((r) => r.url === url && r.status === undefined && r.error === undefined);
      if (pending === undefined) continue;
      const headers: Record<string, string> = {};
      for (const [k, v] of f) if (k.startsWith('response.header.')) headers[k.slice('response.header.'.length)] = v;
      pending.headers = headers;
      const status = Number.parseInt(f.get('response.status') ?? '', 10);
      pending.status = Number.isNaN(status) ? undefined : status;
    } else {
      // A transport error: blame the oldest unanswered request whose URL the error names.
      const error = f.get('error');
      if (error === undefined) continue;
      const pending = requests.find((r) => r.status === undefined && r.error === undefined && error.includes(r.url));
      if (pending !== undefined) pending.error = error;
    }
  }
  return requests;
}

/**
 * For each digest ctr fetched, the request that delivered it (the last GET answered
 * 2xx): `servedBlobs(pull.requests()).get(layer.digest)?.host` says which host served
 * a blob, `.headers?.['x-shoal-source']` what the proxy said about it.
 */
export function servedBlobs(requests: readonly CtrRequest[]): Map<Digest, CtrRequest> {
  const served = new Map<Digest, CtrRequest>();
  for (const r of requests) {
    if (r.digest !== undefined && r.method === 'GET' && r.status !== undefined && r.status >= 200 && r.status < 300) served.set(r.digest, r);
  }
  return served;
}

function userArg(user: string | Credentials): string {
  return typeof user === 'string' ? user : `${user.username}:${user.password}`;
}

export async function startContainerd(options: StartContainerdOptions = {}): Promise<RunningContainerd> {
  const name = options.name ?? 'containerd';
  const safeName = name.replace(/[^a-zA-Z0-9_.-]/g, '_');
  const baseDir = await makeTempDir(safeName);
  const root = join(baseDir, 'root');
  const state = join(baseDir, 'state');
  const opt = join(baseDir, 'opt');
  const hostsDir = join(baseDir, 'certs.d');
  // Unix socket paths are limited to 107 bytes; temp dirs are short.
  const socket = join(baseDir, 'containerd.sock');
  if (Buffer.byteLength(`${socket}.ttrpc`) > 107) throw new Error(`socket path too long for a unix socket: ${socket}`);
  const cniDir = join(baseDir, 'cni');
  await Promise.all([root, state, opt, hostsDir, join(cniDir, 'bin'), join(cniDir, 'conf')].map((d) => mkdir(d, { recursive: true })));
  const configPath = join(baseDir, 'config.toml');
  const writeConfig = (criSnapshotter: string): Promise<void> =>
    writeFile(
      configPath,
      containerdConfig({
        root,
        state,
        socket,
        opt,
        ...(options.extraConfig !== undefined ? { extra: options.extraConfig } : {}),
        ...(options.cri === undefined ? {} : { cri: { configPath: options.cri.configPath ?? hostsDir, cniDir, snapshotter: criSnapshotter } }),
      }),
    );
  await writeConfig(options.snapshotter ?? 'overlayfs');

  // `ip netns exec` execs the command in place: the pid and process group stay the same.
  const inNetns = (command: string, args: readonly string[]): { command: string; args: string[] } =>
    options.netns === undefined ? { command, args: [...args] } : { command: 'ip', args: ['netns', 'exec', options.netns, command, ...args] };
  const daemon = inNetns('containerd', ['--config', configPath]);
  const spawnDaemon = (): Promise<ManagedProcess> => spawnProcess({
    name,
    command: daemon.command,
    args: daemon.args,
    cwd: baseDir,
    env: minimalEnv(),
    stdoutPath: join(baseDir, 'containerd.stdout.log'),
    stderrPath: join(baseDir, 'containerd.stderr.log'),
  });
  let proc = await spawnDaemon();

  let snapshotter = options.snapshotter ?? 'overlayfs';
  const ctr = async (args: readonly string[], o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<RunResult> => {
    const cmd = inNetns('ctr', ['--address', socket, ...args]);
    return runCommand(cmd.command, cmd.args, {
      // ctr reads CONTAINERD_ADDRESS/NAMESPACE/SNAPSHOTTER and proxy variables: only ours.
      env: minimalEnv({ CONTAINERD_SNAPSHOTTER: snapshotter }),
      timeoutMs: o.timeoutMs ?? CTR_TIMEOUT_MS,
      ...(o.signal !== undefined ? { signal: o.signal } : {}),
    });
  };

  const ctrChecked = async (args: readonly string[]): Promise<RunResult> => {
    const result = await ctr(args);
    if (result.code !== 0) throw new Error(`ctr ${args.join(' ')} failed (code ${String(result.code)}): ${result.stderr.trim()}`);
    return result;
  };
  /** `ctr images check` rows (REF TYPE DIGEST STATUS SIZE UNPACKED) of ref whose content is all present. */
  const checkImage = async (ref: string, namespace = 'default'): Promise<string[][]> => {
    const result = await ctrChecked(['--namespace', namespace, 'images', 'check']);
    return result.stdout
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      .filter((cols) => cols[0] === ref && cols[3] === 'complete'); // STATUS is e.g. "complete (3/3)"
  };

  try {
    await waitFor(async () => (await ctr(['version'], { timeoutMs: 5_000 })).code === 0, {
      process: proc,
      description: `${name} on ${socket}`,
      timeoutMs: options.readyTimeoutMs ?? 30_000,
      intervalMs: 100,
    });
    if (options.snapshotter === undefined) {
      // Lines: TYPE ID PLATFORMS STATUS, e.g. "io.containerd.snapshotter.v1 overlayfs linux/amd64 ok".
      const plugins = await ctrChecked(['plugins', 'ls']);
      const overlay = plugins.stdout.split('\n').map((l) => l.trim().split(/\s+/)).find((c) => c[0] === 'io.containerd.snapshotter.v1' && c[1] === 'overlayfs');
      if (overlay?.at(-1) !== 'ok') {
        snapshotter = 'native';
        if (options.cri !== undefined) {
          // The CRI plugin reads its snapshotter from the config: start again with native.
          await proc.stop();
          await writeConfig('native');
          proc = await spawnDaemon();
          await waitFor(async () => (await ctr(['version'], { timeoutMs: 5_000 })).code === 0, { process: proc, description: `${name} on ${socket} (native snapshotter)`, timeoutMs: options.readyTimeoutMs ?? 30_000, intervalMs: 100 });
        }
      }
    }
  } catch (err) {
    await proc.stop();
    await removeTempDir(baseDir);
    throw err;
  }

  let stopped: Promise<void> | undefined;
  return {
    name,
    socket,
    root,
    state,
    hostsDir,
    configPath,
    baseDir,
    get snapshotter() {
      return snapshotter;
    },
    get process() {
      return proc;
    },
    cri: options.cri !== undefined,
    ctr: (args, o) => ctr(args, o),

    async criImages() {
      const listed = await ctrChecked(['--namespace', 'k8s.io', 'images', 'ls', '-q']);
      const names = listed.stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '');
      const checked = await ctrChecked(['--namespace', 'k8s.io', 'images', 'check']);
      const out = new Map<string, { unpacked: boolean }>();
      for (const n of names) out.set(n, { unpacked: false });
      for (const line of checked.stdout.split('\n').slice(1)) {
        const cols = line.trim().split(/\s+/);
        const ref = cols[0];
        if (ref !== undefined && out.has(ref)) out.set(ref, { unpacked: cols[3] === 'complete' && cols.at(-1) === 'true' });
      }
      return out;
    },

    async pull(ref, o = {}) {
      const args: string[] = [];
      if (o.debug === true) args.push('--debug');
      args.push('--namespace', o.namespace ?? 'default', 'images', 'pull');
      const hosts = o.hostsDir === undefined ? hostsDir : o.hostsDir;
      if (hosts !== null) args.push('--hosts-dir', hosts);
      if (o.platform !== undefined) args.push('--platform', o.platform);
      if (o.user !== undefined) args.push('--user', userArg(o.user));
      if (o.plainHttp === true) args.push('--plain-http');
      args.push(ref);
      const result = await ctr(args, { timeoutMs: o.timeoutMs ?? CTR_TIMEOUT_MS, ...(o.signal !== undefined ? { signal: o.signal } : {}) });
      if (o.check !== false && result.code !== 0) {
        throw new Error(`ctr images pull ${ref} failed (code ${String(result.code)}, signal ${String(result.signal)}):\n${result.stderr.slice(-8000)}`);
      }
      let parsed: CtrRequest[] | undefined;
      return {
        ...result,
        requests: () => (parsed ??= parseCtrDebugLog(result.stderr)),
      };
    },

    async imageExists(ref, o = {}) {
      const result = await ctrChecked(['--namespace', o.namespace ?? 'default', 'images', 'ls', '-q']);
      return result.stdout.split('\n').some((line) => line.trim() === ref);
    },

    async imageUnpacked(ref, o = {}) {
      return (await checkImage(ref, o.namespace)).some((cols) => cols.at(-1) === 'true');
    },

    async imageComplete(ref, o = {}) {
      return (await checkImage(ref, o.namespace)).length > 0;
    },

    async contentDigests(o = {}) {
      const result = await ctrChecked(['--namespace', o.namespace ?? 'default', 'content', 'ls', '-q']);
      return new Set(result.stdout.split('\n').map((l) => l.trim()).filter(isDigest));
    },

    stop() {
      stopped ??= (async () => {
        await proc.stop();
        await unmountUnder(baseDir);
        await removeTempDir(baseDir);
      })();
      return stopped;
    },
  };
}

/** Lazily unmounts anything left mounted under `dir` (an interrupted unpack), so rm works. */
async function unmountUnder(dir: string): Promise<void> {
  let mountinfo: string;
  try {
    mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  } catch {
    return;
  }
  const points = mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined && p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const point of points) await runCommand('umount', ['-l', point], { timeoutMs: 10_000 });
}

export interface HostsTomlMirror {
  /** e.g. `http://127.0.0.1:65001` */
  url: string;
  /** @default ['pull', 'resolve'] */
  capabilities?: readonly ('pull' | 'resolve' | 'push')[];
  /** Extra request headers for this host. */
  header?: Readonly<Record<string, string>>;
  /** Send requests to the mirror's URL path as given (no `/v2` added). */
  overridePath?: boolean;
}

export interface WriteHostsTomlOptions {
  /** The registry as images name it (`127.0.0.1:5000`, `docker.io`) or `_default`. */
  registry: string;
  /** `server =`: the upstream, tried last. Omitted when undefined. */
  server?: string;
  mirrors: readonly HostsTomlMirror[];
}

/**
 * Writes `<hostsDir>/<registry>/hosts.toml` (containerd certs.d format) and returns its
 * path. The directory is named `host:port` as is; containerd also accepts that form.
 */
export async function writeHostsToml(hostsDir: string, options: WriteHostsTomlOptions): Promise<string> {
  const lines: string[] = [];
  if (options.server !== undefined) lines.push(`server = ${tomlString(options.server)}`, '');
  for (const m of options.mirrors) {
    lines.push(`[host.${tomlString(m.url)}]`);
    lines.push(`  capabilities = [${(m.capabilities ?? ['pull', 'resolve']).map(tomlString).join(', ')}]`);
    if (m.overridePath === true) lines.push('  override_path = true');
    if (m.header !== undefined) {
      lines.push(`  [host.${tomlString(m.url)}.header]`);
      for (const [k, v] of Object.entries(m.header)) lines.push(`    ${tomlString(k)} = ${tomlString(v)}`);
    }
    lines.push('');
  }
  const dir = join(hostsDir, options.registry);
  await mkdir(dir, { recursive: true });
  const path = join(dir, 'hosts.toml');
  await writeFile(path, `${lines.join('\n')}\n`);
  return path;
}
