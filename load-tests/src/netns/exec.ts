/**
 * Commands run inside network namespaces (`ip netns exec`, which execs the command in
 * place: the pid we get is the command's own). Everything here needs root.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { minimalEnv, runChecked, runCommand, type RunOptions, type RunResult } from '@shoal/testkit';

/** `ip netns exec <ns> <command> <args...>` as a command line for spawn/runCommand. */
export function inNetns(ns: string, command: string, args: readonly string[] = []): { command: string; args: string[] } {
  return { command: 'ip', args: ['netns', 'exec', ns, command, ...args] };
}

export async function runIn(ns: string, command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const c = inNetns(ns, command, args);
  return runCommand(c.command, c.args, { timeoutMs: 30_000, ...options });
}

export async function runInChecked(ns: string, command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const c = inNetns(ns, command, args);
  return runChecked(c.command, c.args, { timeoutMs: 30_000, ...options });
}

/**
 * GET a URL from inside a namespace (loopback there is the namespace's own). curl
 * with a clean environment: no proxy variables can send it anywhere else.
 */
export async function httpGetIn(ns: string, url: string, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  const r = await runIn(ns, 'curl', ['-sS', '--noproxy', '*', '--max-time', String(timeoutMs / 1000), '-w', '\n%{http_code}', url], { timeoutMs: timeoutMs + 2_000, env: minimalEnv() });
  if (r.code !== 0) throw new Error(`curl ${url} in ${ns}: ${r.stderr.trim()}`);
  const cut = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(cut + 1)), body: r.stdout.slice(0, cut) };
}

/** An interface's byte counter, read in its namespace (sysfs there is the namespace's). */
export async function txBytesIn(ns: string, ifname: string): Promise<number> {
  const r = await runInChecked(ns, 'cat', [`/sys/class/net/${ifname}/statistics/tx_bytes`]);
  return Number(r.stdout.trim());
}

/** Both byte counters of an interface (sent, received), read in its namespace in one exec. */
export async function linkBytesIn(ns: string, ifname: string): Promise<{ tx: number; rx: number }> {
  const dir = `/sys/class/net/${ifname}/statistics`;
  const r = await runInChecked(ns, 'cat', [`${dir}/tx_bytes`, `${dir}/rx_bytes`]);
  const [tx, rx] = r.stdout.trim().split(/\s+/).map(Number);
  return { tx: tx ?? 0, rx: rx ?? 0 };
}

export interface GatedProcess {
  readonly pid: number;
  /** Lets the command start (writes the line its `read` waits for). */
  release(): void;
  /** Settles at exit, with when each watched stdout pattern was first seen. */
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null; endedAt: number; seen: Map<string, number>; stdoutTail: string; stderrTail: string }>;
  kill(): void;
}

const gated = new Set<number>();
let gatedHook = false;

/**
 * Starts `sh -c 'read _ && exec <command>'` in a namespace, in its own process group: it
 * waits on stdin so that many of them can be let go at the same instant (a barrier),
 * with the exec cost of `ip netns exec` and `sh` already paid. `watch` patterns are
 * matched against stdout lines and timestamped (`performance.now()`).
 */
export function spawnGated(
  ns: string,
  command: string,
  args: readonly string[],
  options: {
    env: Readonly<Record<string, string>>;
    watch?: Readonly<Record<string, RegExp>>;
    /** How much of stderr's end `done` keeps (a debug log needs more). @default 4000 */
    stderrKeepBytes?: number;
  },
): GatedProcess {
  const stderrKeep = options.stderrKeepBytes ?? 4000;
  if (!gatedHook) {
    gatedHook = true;
    process.on('exit', () => {
      for (const pid of gated) killGroup(pid);
    });
  }
  const quoted = [command, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const c = inNetns(ns, 'sh', ['-c', `read _ && exec ${quoted}`]);
  const child = spawn(c.command, c.args, { env: options.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cannot start ${command} in ${ns}`);
  gated.add(pid);
  const seen = new Map<string, number>();
  let stdoutTail = '';
  let stderrTail = '';
  createInterface({ input: child.stdout }).on('line', (line) => {
    stdoutTail = `${stdoutTail}${line}\n`.slice(-4000);
    for (const [key, re] of Object.entries(options.watch ?? {})) if (!seen.has(key) && re.test(line)) seen.set(key, performance.now());
  });
  child.stderr.on('data', (d: Buffer) => {
    stderrTail = `${stderrTail}${d.toString('utf8')}`;
    if (stderrTail.length > stderrKeep) stderrTail = stderrTail.slice(-stderrKeep);
  });
  child.stdin.on('error', () => {}); // EPIPE when it died before the release
  const done = new Promise<Awaited<GatedProcess['done']>>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      gated.delete(pid);
      killGroup(pid);
      resolve({ code, signal, endedAt: performance.now(), seen, stdoutTail, stderrTail });
    });
  });
  return {
    pid,
    release: () => void child.stdin.end('go\n'),
    done,
    kill: () => killGroup(pid),
  };
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
