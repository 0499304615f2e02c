/**
 * Child processes for tests: output captured to log files, readiness polling,
 * and teardown that leaves nothing behind.
 *
 * Every child runs in its own process group (`detached`), so `stop()` signals the
 * whole group (SIGTERM, then SIGKILL after a grace period). Because a test worker can
 * itself be killed with SIGKILL (ava on timeout), where no JavaScript runs any more,
 * each child also gets a tiny `sh` watchdog in its own group that kills the child's
 * group as soon as this Node process is gone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Grace period between SIGTERM and SIGKILL. @default 5000 */
export const DEFAULT_STOP_TIMEOUT_MS = 5_000;
/** How long `waitFor` polls before giving up. @default 30000 */
export const DEFAULT_READY_TIMEOUT_MS = 30_000;
/** Watchdog poll period in seconds (`sleep` argument). */
const WATCHDOG_PERIOD_S = '0.5';

export interface SpawnProcessOptions {
  /** A short name used in error messages. */
  name: string;
  command: string;
  args?: readonly string[];
  /**
   * The complete environment of the child. Nothing of `process.env` is inherited unless
   * given here: several tools read configuration from the environment.
   * @default { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR }
   */
  env?: Readonly<Record<string, string>>;
  cwd?: string;
  /** Where stdout goes (appended). @default `<logDir>/<name>.stdout.log` */
  stdoutPath?: string;
  /** Where stderr goes (appended). @default `<logDir>/<name>.stderr.log` */
  stderrPath?: string;
  /** Directory for the default log paths. @default a new temp dir */
  logDir?: string;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly stdoutPath: string;
  readonly stderrPath: string;
  /** Settles when the process has exited (never rejects). */
  readonly exited: Promise<ProcessExit>;
  /** Undefined while running. */
  exitStatus(): ProcessExit | undefined;
  stdout(): Promise<string>;
  stderr(): Promise<string>;
  /** The last lines of stdout and stderr, for error messages. */
  tail(lines?: number): Promise<string>;
  /** SIGTERM the process group, SIGKILL after `timeoutMs`. Idempotent. */
  stop(options?: { timeoutMs?: number }): Promise<ProcessExit>;
}

const live = new Set<ManagedProcess>();
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Synchronous last resort when the test process exits with children still running.
  process.on('exit', () => {
    for (const pgid of liveGroups) killGroup(pgid, 'SIGKILL');
  });
}

function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false; // ESRCH: already gone
  }
}

/** The environment a child gets when none is given: no inherited configuration. */
export function minimalEnv(extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };
  if (process.env.HOME !== undefined) env.HOME = process.env.HOME;
  if (process.env.TMPDIR !== undefined) env.TMPDIR = process.env.TMPDIR;
  return { ...env, ...extra };
}

/** A fresh temp directory named `shoal-<prefix>-XXXXXX`. */
export async function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `shoal-${prefix}-`));
}

/** Removes a directory tree unless SHOAL_KEEP_TMP=1 (for post-mortems). */
export async function removeTempDir(dir: string): Promise<void> {
  if (process.env.SHOAL_KEEP_TMP === '1') return;
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

async function readOrEmpty(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}

function lastLines(text: string, n: number): string {
  return text.split('\n').filter((l) => l !== '').slice(-n).join('\n');
}

export async function spawnProcess(options: SpawnProcessOptions): Promise<ManagedProcess> {
  installExitHook();
  const logDir = options.logDir ?? (options.stdoutPath !== undefined && options.stderrPath !== undefined ? '' : await makeTempDir(`${options.name}-log`));
  const stdoutPath = options.stdoutPath ?? join(logDir, `${options.name}.stdout.log`);
  const stderrPath = options.stderrPath ?? join(logDir, `${options.name}.stderr.log`);
  const outFd = openSync(stdoutPath, 'a');
  const errFd = openSync(stderrPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(options.command, [...(options.args ?? [])], {
      cwd: options.cwd,
      env: options.env ?? minimalEnv(),
      stdio: ['ignore', outFd, errFd],
      detached: true, // own process group, so the whole group can be signalled
    });
  } finally {
    // The child has its own copies of the descriptors.
    closeSync(outFd);
    closeSync(errFd);
  }

  const spawned = await new Promise<{ pid: number } | { error: Error }>((resolve) => {
    child.once('spawn', () => resolve({ pid: child.pid ?? -1 }));
    child.once('error', (error) => resolve({ error }));
  });
  if ('error' in spawned) {
    throw new Error(`${options.name}: cannot start ${options.command}: ${spawned.error.message}`, { cause: spawned.error });
  }
  const pid = spawned.pid;
  liveGroups.add(pid);

  const watchdog = spawn(
    'sh',
    ['-c', `while kill -0 ${process.pid} 2>/dev/null && kill -0 -${pid} 2>/dev/null; do sleep ${WATCHDOG_PERIOD_S}; done; kill -KILL -${pid} 2>/dev/null; exit 0`],
    { stdio: 'ignore', detached: true },
  );
  watchdog.on('error', () => {});
  watchdog.unref();

  let status: ProcessExit | undefined;
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('exit', (code, signal) => {
      status = { code, signal };
      // Reap any other members of the group (a leader that exits early can leave some).
      killGroup(pid, 'SIGKILL');
      liveGroups.delete(pid);
      if (watchdog.pid !== undefined) killGroup(watchdog.pid, 'SIGKILL');
      resolve(status);
    });
  });
  // A forgotten child must not keep the test process alive on its own (the exit hook
  // and the watchdog kill it); stop() refs it again while it waits for the exit.
  child.unref();

  let stopping: Promise<ProcessExit> | undefined;
  const managed: ManagedProcess = {
    name: options.name,
    pid,
    stdoutPath,
    stderrPath,
    exited,
    exitStatus: () => status,
    stdout: () => readOrEmpty(stdoutPath),
    stderr: () => readOrEmpty(stderrPath),
    async tail(lines = 20) {
      const [out, err] = await Promise.all([readOrEmpty(stdoutPath), readOrEmpty(stderrPath)]);
      return `--- ${options.name} stdout (${stdoutPath}):\n${lastLines(out, lines)}\n--- ${options.name} stderr (${stderrPath}):\n${lastLines(err, lines)}`;
    },
    stop(stopOptions = {}) {
      stopping ??= (async () => {
        if (status === undefined) {
          child.ref();
          killGroup(pid, 'SIGTERM');
          const timeoutMs = stopOptions.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
          const timer = sleep(timeoutMs, 'timeout' as const, { ref: false });
          if ((await Promise.race([exited, timer])) === 'timeout') killGroup(pid, 'SIGKILL');
        }
        const result = await exited;
        live.delete(managed);
        return result;
      })();
      return stopping;
    },
  };
  live.add(managed);
  return managed;
}

/** Stops every process this module started and that is still running. */
export async function stopAllProcesses(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop()));
}

export interface WaitForOptions {
  /** @default 30000 */
  timeoutMs?: number;
  /** @default 50 */
  intervalMs?: number;
  /** What is awaited, for the error message. */
  description?: string;
  /** Fail at once (with its log tail) when this process exits while waiting. */
  process?: ManagedProcess;
}

/**
 * Polls `check` until it returns true. Exceptions from `check` count as "not yet".
 * Throws with the process's log tail on timeout or when the process exits.
 */
export async function waitFor(check: () => boolean | Promise<boolean>, options: WaitForOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const intervalMs = options.intervalMs ?? 50;
  const description = options.description ?? 'condition';
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    const exit = options.process?.exitStatus();
    if (exit !== undefined && options.process !== undefined) {
      throw new Error(
        `${options.process.name} exited (code ${String(exit.code)}, signal ${String(exit.signal)}) while waiting for ${description}\n${await options.process.tail()}`,
      );
    }
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const reason = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      const tail = options.process !== undefined ? `\n${await options.process.tail()}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}${reason}${tail}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * A TCP port that was free a moment ago (listen on port 0, read it, close).
 * Another process can take it before the caller binds it: callers retry on EADDRINUSE,
 * and check with `groupListensOn` (or `answersOnOwnPorts`) that the server answering there
 * is theirs. An address that must stay dead takes `deadPort`.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not read the listening port'));
      });
    });
  });
}

/** Dead ports are drawn from here up to the start of the kernel's ephemeral range (32768 if unreadable). */
const DEAD_PORT_FLOOR = 10_000;

/**
 * A port on `host` where nothing listens, for a test that needs an address that refuses
 * connections. A port from `freePort` will not do: another test may bind it a moment later.
 * This one lies below the kernel's ephemeral range, from which `freePort` and every port-0
 * listener are drawn, so no test is given it meanwhile.
 */
export async function deadPort(host = '127.0.0.1'): Promise<number> {
  const range = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '');
  const ephemeralLow = Number(range.trim().split(/\s+/)[0]);
  const below = Number.isInteger(ephemeralLow) && ephemeralLow > DEAD_PORT_FLOOR + 100 ? ephemeralLow : 32_768;
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = DEAD_PORT_FLOOR + Math.floor(Math.random() * (below - DEAD_PORT_FLOOR));
    if (await refuses(host, port)) return port;
  }
  throw new Error(`no port under ${below} refuses connections on ${host}`);
}

function refuses(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface RunOptions {
  env?: Readonly<Record<string, string>>;
  cwd?: string;
  /** Kill the command's group after this long. @default 300000 */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Runs a short-lived command to completion and collects its output. Its process group
 * is killed on timeout or abort. Does not throw on a non-zero exit: see `runChecked`.
 */
export async function runCommand(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  installExitHook();
  const started = performance.now();
  const child = spawn(command, [...args], {
    cwd: options.cwd,
    env: options.env ?? minimalEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
  const pid = child.pid;
  if (pid !== undefined) liveGroups.add(pid);
  const kill = (): void => {
    if (pid !== undefined) killGroup(pid, 'SIGKILL');
  };
  const timer = setTimeout(kill, options.timeoutMs ?? 300_000);
  timer.unref();
  options.signal?.addEventListener('abort', kill, { once: true });
  try {
    const { code, signal } = await new Promise<ProcessExit>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c, s) => resolve({ code: c, signal: s }));
    });
    return {
      code,
      signal,
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
      durationMs: performance.now() - started,
    };
  } catch (cause) {
    throw new Error(`cannot run ${command}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', kill);
    if (pid !== undefined) {
      killGroup(pid, 'SIGKILL'); // anything the command left in its group
      liveGroups.delete(pid);
    }
  }
}

/** Like `runCommand`, but throws (with stdout/stderr) unless the exit code is 0. */
export async function runChecked(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await runCommand(command, args, options);
  if (result.code !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} failed (code ${String(result.code)}, signal ${String(result.signal)})\n--- stdout:\n${result.stdout.slice(-4000)}\n--- stderr:\n${result.stderr.slice(-4000)}`,
    );
  }
  return result;
}

/** Whether `url` answers 200 within 2 s (a readiness probe). Never throws. */
export async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.body?.cancel();
    return res.status === 200;
  } catch {
    return false;
  }
}

/**
 * Whether a process in the process group `groupId` (a `spawnProcess` child's pid) has a TCP
 * socket listening on `port`, read from /proc. A server answering on a port from `freePort`
 * may be another test's that bound it first, while ours is about to fail with EADDRINUSE:
 * an HTTP answer alone does not say whose it is.
 */
export async function groupListensOn(groupId: number, port: number): Promise<boolean> {
  return groupListensOnAll(groupId, [port]);
}

/**
 * A `waitFor` check for a spawned server: `url` answers 2xx and the server's own process
 * group holds every one of `ports` (see groupListensOn).
 */
export function answersOnOwnPorts(proc: ManagedProcess, url: string, ports: readonly number[]): () => Promise<boolean> {
  return async () => (await httpOk(url)) && (await groupListensOnAll(proc.pid, ports));
}

/** groupListensOn for every one of `ports`, reading the group's sockets once. */
async function groupListensOnAll(groupId: number, ports: readonly number[]): Promise<boolean> {
  const listening = await Promise.all(ports.map((port) => listeningSocketInodes(port)));
  if (listening.some((inodes) => inodes.size === 0)) return false;
  const held = await groupSocketInodes(groupId);
  return listening.every((inodes) => [...inodes].some((inode) => held.has(inode)));
}

/** Inodes of the sockets the processes of group `groupId` hold open. */
async function groupSocketInodes(groupId: number): Promise<Set<string>> {
  const held = new Set<string>();
  for (const pid of await processGroupMembers(groupId)) {
    let fds: string[];
    try {
      fds = await readdir(`/proc/${pid}/fd`);
    } catch {
      continue; // exited meanwhile
    }
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode !== undefined) held.add(inode);
    }
  }
  return held;
}

const TCP_LISTEN_STATE = '0A';

/** Inodes of the sockets listening on `port` in this network namespace (IPv4 and IPv6). */
async function listeningSocketInodes(port: number): Promise<Set<string>> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const fields = line.trim().split(/\s+/);
      const [localAddress, state, inode] = [fields[1], fields[3], fields[9]];
      if (localAddress === undefined || inode === undefined || state !== TCP_LISTEN_STATE) continue;
      if (Number.parseInt(localAddress.slice(localAddress.lastIndexOf(':') + 1), 16) === port) inodes.add(inode);
    }
  }
  return inodes;
}

/** The pids whose process group is `groupId`. */
async function processGroupMembers(groupId: number): Promise<number[]> {
  const members: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
    const pgrp = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2];
    if (pgrp !== undefined && Number(pgrp) === groupId) members.push(Number(entry));
  }
  return members;
}
