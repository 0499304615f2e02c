import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { answersOnOwnPorts, freePort, httpOk, minimalEnv, spawnProcess, waitFor, type ManagedProcess } from '@shoal/testkit';
import { NODE_FLAGS } from '@shoal/cli';

export { httpOk };

export const SHOAL = fileURLToPath(new URL('../../../services/shoal/bin/shoal.js', import.meta.url));


/** A memory field of /proc/<pid>/status (VmRSS, VmHWM, ...), MiB; undefined when absent (an exited process). */
async function statusMiB(pid: number, field: string): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1];
  return kib === undefined ? undefined : Number(kib) / 1024;
}

/** Resident memory of a process, MiB (0 once it has exited). */
export async function rssMiB(pid: number): Promise<number> {
  return (await statusMiB(pid, 'VmRSS')) ?? 0;
}

/** A process's peak resident memory since it started (VmHWM), MiB. */
export async function peakRssMiB(pid: number): Promise<number> {
  const mib = await statusMiB(pid, 'VmHWM');
  if (mib === undefined) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return mib;
}

/** Open file descriptors of a process (sockets included). */
export async function openFds(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

/**
 * A Shoal service run as its own process with fixed ports and data dir, so it
 * can be killed (SIGKILL: a crash) and started again as the same member.
 */
export class ServiceProcess {
  readonly name: string;
  readonly url: string;
  private readonly args: string[];
  private readonly env: Record<string, string>;
  private readonly logDir: string;
  private current: ManagedProcess | undefined;
  /** Processes this harness ended itself (kill, stop): any other exit is a crash. */
  private readonly endedOnPurpose = new WeakSet<ManagedProcess>();
  /** Exits nobody asked for: the service crashed (an uncaught exception, an OOM kill). */
  readonly crashes: Array<{ name: string; exit: string; tail: string }> = [];

  private constructor(
    name: string,
    url: string,
    args: string[],
    env: Record<string, string>,
    logDir: string,
    /** The ports it listens on: ready means it holds them, not just that something answers there. */
    private readonly listenPorts: number[],
  ) {
    this.name = name;
    this.url = url;
    this.args = args;
    this.env = env;
    this.logDir = logDir;
  }

  static async supernode(dir: string, name: string, plainHttp: string, logLevel = 'warn'): Promise<ServiceProcess> {
    const port = await freePort();
    return new ServiceProcess(name, `http://127.0.0.1:${port}`, ['supernode'], {
      SHOAL_LISTEN: `127.0.0.1:${port}`,
      SHOAL_DATA: join(dir, name),
      SHOAL_PLAIN_HTTP: plainHttp,
      SHOAL_LOG_LEVEL: logLevel,
    }, dir, [port]);
  }

  /** `url` is the node's proxy; `peerUrl` its peer. */
  static async node(dir: string, name: string, supernodes: string[], plainHttp: string, extra: Record<string, string> = {}, logLevel = 'warn'): Promise<ServiceProcess & { peerUrl: string }> {
    const [proxyPort, peerPort] = [await freePort(), await freePort()];
    const node = new ServiceProcess(name, `http://127.0.0.1:${proxyPort}`, ['node'], {
      SHOAL_SUPERNODE: supernodes.join(','),
      SHOAL_PROXY_LISTEN: `127.0.0.1:${proxyPort}`,
      SHOAL_PEER_LISTEN: `127.0.0.1:${peerPort}`,
      SHOAL_DATA: join(dir, name),
      SHOAL_PLAIN_HTTP: plainHttp,
      SHOAL_LOG_LEVEL: logLevel,
      ...extra,
    }, dir, [proxyPort, peerPort]);
    return Object.assign(node, { peerUrl: `http://127.0.0.1:${peerPort}` });
  }

  get pid(): number | undefined {
    return this.current?.exitStatus() === undefined ? this.current?.pid : undefined;
  }

  get running(): boolean {
    return this.pid !== undefined;
  }

  async start(): Promise<void> {
    const p = await spawnProcess({ name: this.name, command: process.execPath, args: [...NODE_FLAGS, SHOAL, ...this.args], env: minimalEnv(this.env), logDir: this.logDir });
    this.current = p;
    void p.exited.then(async (exit) => {
      if (this.endedOnPurpose.has(p)) return;
      this.crashes.push({ name: this.name, exit: exit.signal ?? `code ${String(exit.code)}`, tail: await p.tail(20).catch(() => '') });
    });
    // Another process may have taken a freePort() port first and answer there.
    await waitFor(answersOnOwnPorts(p, `${this.url}/readyz`, this.listenPorts), { process: p, description: `${this.name} ready`, timeoutMs: 30_000 });
  }

  /** SIGKILL, as a crash or an OOM kill would. */
  async kill(): Promise<void> {
    const p = this.current;
    if (p === undefined || p.exitStatus() !== undefined) return;
    this.endedOnPurpose.add(p);
    try {
      process.kill(-p.pid, 'SIGKILL');
    } catch {
      process.kill(p.pid, 'SIGKILL');
    }
    await p.exited;
  }

  async stop(): Promise<void> {
    if (this.current !== undefined) this.endedOnPurpose.add(this.current);
    await this.current?.stop();
  }
}
