/**
 * CPU accounting for a benchmark window: the whole machine from /proc/stat (sampled, so
 * saturation shows even when the average hides it), our own processes by group, and
 * everything else on the machine from a /proc scan at both ends of the window: kernel
 * threads (writeback, softirq daemons) and other processes by command line, so work
 * that is not ours (another job on a shared machine) is named, not guessed.
 */
import { readdir, readFile } from 'node:fs/promises';
import { cpus } from 'node:os';

/** USER_HZ: the unit of /proc/*\/stat times (100 on every Linux this runs on). */
const CLOCK_TICKS_PER_S = 100;
const SAMPLE_MS = 500;
/** A sample this busy counts as saturated. */
const SATURATED = 0.95;
/** Other processes listed by name in the report. */
const TOP_OTHERS = 3;

/** The machine's CPU time so far, all cores, in clock ticks (the `cpu` line of /proc/stat). */
export interface CpuTotals {
  /** Everything but idle and iowait; steal included (a VM's vCPU was runnable, the hypervisor ran another guest). */
  busy: number;
  total: number;
  softirq: number;
  irq: number;
  iowait: number;
  steal: number;
}

/** Reads the `cpu` line of /proc/stat: user nice system idle iowait irq softirq steal guest guest_nice (guest is in user). */
export function parseProcStatCpu(text: string): CpuTotals {
  const line = text.split('\n').find((l) => l.startsWith('cpu ')) ?? '';
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number);
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait, softirq, irq, iowait, steal };
}

async function cpuTotals(): Promise<CpuTotals> {
  return parseProcStatCpu(await readFile('/proc/stat', 'utf8'));
}

/** The whole machine's CPU-seconds so far (all cores, every process and the kernel): busy, and in all. */
export async function machineCpuSeconds(): Promise<{ busy: number; total: number }> {
  const t = await cpuTotals();
  return { busy: t.busy / CLOCK_TICKS_PER_S, total: t.total / CLOCK_TICKS_PER_S };
}

interface ProcCpu {
  ppid: number;
  seconds: number;
  name: string;
}

/** The fields the benchmarks use of a /proc/<pid>/stat (or task, or thread-self) line; seconds = utime + stime. */
export function parseStat(stat: string): { ppid: number; seconds: number; comm: string } {
  const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  // Fields after the command name: state ppid ... utime (14) stime (15) cutime cstime.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(fields[1]), seconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S, comm };
}

/** utime + stime of one process, in seconds (0 when it is gone). */
export async function processCpuSeconds(pid: number): Promise<number> {
  try {
    return parseStat(await readFile(`/proc/${pid}/stat`, 'utf8')).seconds;
  } catch {
    return 0;
  }
}

/**
 * utime + stime of a process's main thread (the thread whose id is the pid), in seconds (0
 * when it is gone). For Node, the rest of the process is libuv's pool (file I/O) and V8's
 * helpers (garbage collection, the optimising compiler).
 */
export async function mainThreadCpuSeconds(pid: number): Promise<number> {
  try {
    return parseStat(await readFile(`/proc/${pid}/task/${pid}/stat`, 'utf8')).seconds;
  } catch {
    return 0;
  }
}

/** Every process now: CPU seconds so far, parent, and a short command line. */
async function scanProcesses(): Promise<Map<number, ProcCpu>> {
  const out = new Map<number, ProcCpu>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const s = parseStat(await readFile(`/proc/${entry}/stat`, 'utf8'));
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0').filter((a) => a !== '').join(' ');
      out.set(Number(entry), { ppid: s.ppid, seconds: s.seconds, name: cmdline === '' ? `[${s.comm}]` : cmdline.slice(0, 80) });
    } catch {
      // exited while scanning
    }
  }
  return out;
}

/** This process's reaped children (utime + stime of every child it waited for), in seconds. */
async function reapedChildrenCpuSeconds(): Promise<number> {
  const stat = await readFile('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS_PER_S;
}

export interface CpuReport {
  cores: number;
  wallSeconds: number;
  /** Mean share of all cores busy (0..1). */
  meanBusy: number;
  /** Share of 0.5 s samples with all cores ≥ 95 % busy. */
  saturatedShare: number;
  /** Every 0.5 s sample: when it ended (performance.now(), ms) and the share of all cores busy in it. */
  samples: CpuSample[];
  /** Busy CPU seconds of the whole machine (of wallSeconds × cores). */
  machineSeconds: number;
  /** CPU seconds per group of our processes (and `bench`, this process). */
  byGroup: Record<string, number>;
  /** CPU seconds (user + sys from /proc/<pid>/stat) of each long-lived process of each group. */
  perProcess: Array<{ group: string; pid: number; seconds: number }>;
  /** From /proc/stat: interrupt and softirq time (packet processing, shaping), I/O wait, steal. */
  kernel: { softirqSeconds: number; irqSeconds: number; iowaitSeconds: number; stealSeconds: number };
  /** Kernel threads (kworker writeback, ksoftirqd, ...). */
  kernelThreadSeconds: number;
  /** Processes that are not ours, alive at the end of the window. */
  otherSeconds: number;
  otherTop: Array<{ name: string; seconds: number }>;
}

export interface CpuSample {
  atMs: number;
  busy: number;
}

/** Busy share and saturated share of the samples that ended within [fromMs, toMs] (performance.now()). */
export function cpuInWindow(samples: CpuSample[], fromMs: number, toMs: number): { samples: number; meanBusy: number; saturatedShare: number } {
  const inside = samples.filter((x) => x.atMs >= fromMs && x.atMs <= toMs);
  if (inside.length === 0) return { samples: 0, meanBusy: 0, saturatedShare: 0 };
  return {
    samples: inside.length,
    meanBusy: inside.reduce((a, x) => a + x.busy, 0) / inside.length,
    saturatedShare: inside.filter((x) => x.busy >= SATURATED).length / inside.length,
  };
}

export interface CpuWindow {
  stop(): Promise<CpuReport>;
}

/**
 * Starts measuring. `groups` gives the pids of our long-lived processes by group;
 * `reapedGroup` gets the CPU time of children this process reaped in the window
 * (short-lived commands: the ctr pulls).
 */
export async function startCpuWindow(groups: Record<string, number[]>, reapedGroup: string): Promise<CpuWindow> {
  const cores = cpus().length;
  const startedAt = performance.now();
  const before = await scanProcesses();
  const first = await cpuTotals();
  const reaped0 = await reapedChildrenCpuSeconds();
  const self0 = process.cpuUsage();
  const samples: CpuSample[] = [];
  let prev = first;
  const timer = setInterval(() => {
    void cpuTotals().then((now) => {
      const dt = now.total - prev.total;
      if (dt > 0) samples.push({ atMs: performance.now(), busy: (now.busy - prev.busy) / dt });
      prev = now;
    });
  }, SAMPLE_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      const last = await cpuTotals();
      const after = await scanProcesses();
      const self = process.cpuUsage(self0);
      const delta = (pid: number): number => {
        const a = after.get(pid);
        if (a === undefined) return 0;
        return Math.max(0, a.seconds - (before.get(pid)?.seconds ?? 0));
      };
      const ours = new Set<number>([process.pid]);
      const byGroup: Record<string, number> = {};
      const perProcess: CpuReport['perProcess'] = [];
      for (const [group, pids] of Object.entries(groups)) {
        byGroup[group] = pids.reduce((s, pid) => s + delta(pid), 0);
        for (const pid of pids) {
          ours.add(pid);
          perProcess.push({ group, pid, seconds: delta(pid) });
        }
      }
      // Children of our processes (watchdogs, a gated ctr still alive) are ours too.
      for (const [pid, p] of after) if (ours.has(p.ppid)) ours.add(pid);
      byGroup[reapedGroup] = (byGroup[reapedGroup] ?? 0) + (await reapedChildrenCpuSeconds()) - reaped0;
      byGroup.bench = (self.user + self.system) / 1e6;
      let kernelThreadSeconds = 0;
      const others = new Map<string, number>();
      for (const [pid, p] of after) {
        if (ours.has(pid)) continue;
        const d = delta(pid);
        if (d === 0) continue;
        if (pid === 2 || p.ppid === 2) kernelThreadSeconds += d;
        else others.set(p.name, (others.get(p.name) ?? 0) + d);
      }
      const otherTop = [...others].sort((a, b) => b[1] - a[1]).slice(0, TOP_OTHERS).map(([name, seconds]) => ({ name, seconds }));
      const s = (k: keyof CpuTotals): number => (last[k] - first[k]) / CLOCK_TICKS_PER_S;
      return {
        cores,
        wallSeconds: (performance.now() - startedAt) / 1000,
        meanBusy: (last.busy - first.busy) / Math.max(1, last.total - first.total),
        saturatedShare: samples.length === 0 ? 0 : samples.filter((x) => x.busy >= SATURATED).length / samples.length,
        samples,
        machineSeconds: s('busy'),
        byGroup,
        perProcess,
        kernel: { softirqSeconds: s('softirq'), irqSeconds: s('irq'), iowaitSeconds: s('iowait'), stealSeconds: s('steal') },
        kernelThreadSeconds,
        otherSeconds: [...others.values()].reduce((a, b) => a + b, 0),
        otherTop,
      };
    },
  };
}
