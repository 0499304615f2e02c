/**
 * Checks that the shaping does what the benchmark assumes, with real TCP flows between
 * namespaces (tcp-probe.js): one flow gets about B; two flows leaving one host for two
 * destinations share its upload evenly; two flows from two sources into one host share
 * its download evenly. Goodput is below the line rate by the TCP/IP/Ethernet framing
 * (1448 payload bytes per 1514 on the wire: 95.6 %).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { minimalEnv } from '@shoal/testkit';
import { inNetns, runIn } from './exec.js';
import { QUANTUM_BYTES } from './shaping.js';
import type { Host } from './topology.js';

/** Quanta each fan-out flow gets at least over its check (see verifyShaping). */
const FAN_OUT_QUANTA = 24;
const PROBE = fileURLToPath(new URL('./tcp-probe.js', import.meta.url));
const PROBE_PORT = 47_001;

export interface FlowResult {
  from: string;
  to: string;
  mbit: number;
}

export interface ShapingCheck {
  name: string;
  flows: FlowResult[];
  /** All bytes over the span from the first flow's first byte to the last flow's end, Mbit/s. */
  aggregateMbit: number;
  /** Sum of the flows' goodput as a fraction of B. */
  totalOfB: number;
  /** Smallest flow / largest flow (1 = perfectly fair). */
  fairness: number;
  /** Bytes a bare socket got per read at the receiving end(s), and the receivers' CPU-seconds per GiB received. */
  bytesPerRead: number;
  receiverCpuSecondsPerGiB: number;
  /** The senders' CPU-seconds per GiB handed to their sockets (NaN when none reported: a sender still blocked at the end is cut before it can). */
  senderCpuSecondsPerGiB: number;
  ok: boolean;
}

interface ProbeReport {
  from: string;
  bytes: number;
  reads: number;
  cpuSeconds: number;
  seconds: number;
  firstMs: number;
  lastMs: number;
}

/** Senders are started with a common start time this far ahead (process start-up under load). */
const START_DELAY_MS = 1_500;

/** Resolves once the server listens; `reports` settles when all its connections ended. */
async function serve(host: Host, connections: number): Promise<{ reports: Promise<ProbeReport[]> }> {
  const c = inNetns(host.ns, process.execPath, [PROBE, 'serve', String(PROBE_PORT), String(connections)]);
  const child = spawn(c.command, c.args, { env: minimalEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const reports: ProbeReport[] = [];
  let listening: () => void = () => {};
  const ready = new Promise<void>((resolve) => (listening = resolve));
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line === 'listening') listening();
    else if (line.startsWith('{')) reports.push(JSON.parse(line) as ProbeReport);
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const closed = new Promise<ProbeReport[]>((resolve, reject) =>
    child.once('close', (code) => (code === 0 ? resolve(reports) : reject(new Error(`probe server in ${host.ns} exited ${String(code)}: ${stderr}`)))),
  );
  closed.catch(() => {}); // awaited by the caller; a failure before `listening` is rethrown just below
  await Promise.race([ready, closed]);
  return { reports: closed };
}

interface Measured {
  flows: FlowResult[];
  aggregateMbit: number;
  bytes: number;
  reads: number;
  receiverCpuSeconds: number;
  senderCpuSecondsPerGiB: number;
}

async function flows(pairs: ReadonlyArray<readonly [Host, Host]>, seconds: number): Promise<Measured> {
  const byDest = new Map<Host, Host[]>();
  for (const [from, to] of pairs) byDest.set(to, [...(byDest.get(to) ?? []), from]);
  const servers = await Promise.all([...byDest].map(async ([to, froms]) => ({ to, ...(await serve(to, froms.length)) })));
  const startAt = String(Date.now() + START_DELAY_MS);
  const senders = pairs.map(([from, to]) => runIn(from.ns, process.execPath, [PROBE, 'send', to.ip, String(PROBE_PORT), String(seconds), startAt], { timeoutMs: (seconds + 30) * 1000, env: minimalEnv() }));
  let sent = 0;
  let senderCpuSeconds = 0;
  for (const r of await Promise.all(senders)) {
    if (r.code !== 0) throw new Error(`probe sender failed: ${r.stderr}`);
    const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
    if (line === undefined) continue;
    const report = JSON.parse(line) as { sent: number; cpuSeconds: number };
    sent += report.sent;
    senderCpuSeconds += report.cpuSeconds;
  }
  const out: FlowResult[] = [];
  const all: ProbeReport[] = [];
  let receiverCpuSeconds = 0;
  for (const { to, reports } of servers) {
    const got = await reports;
    for (const r of got) {
      out.push({ from: r.from, to: to.ip, mbit: (r.bytes * 8) / r.seconds / 1e6 });
      all.push(r);
    }
    receiverCpuSeconds += got[0]?.cpuSeconds ?? 0; // one server process per destination
  }
  const spanS = (Math.max(...all.map((r) => r.lastMs)) - Math.min(...all.map((r) => r.firstMs))) / 1000;
  const bytes = all.reduce((s, r) => s + r.bytes, 0);
  return {
    flows: out,
    aggregateMbit: (bytes * 8) / spanS / 1e6,
    bytes,
    reads: all.reduce((s, r) => s + r.reads, 0),
    receiverCpuSeconds,
    senderCpuSecondsPerGiB: sent > 0 ? senderCpuSeconds / (sent / 2 ** 30) : Number.NaN,
  };
}

function judge(name: string, m: Measured, rateMbit: number): ShapingCheck {
  const rates = m.flows.map((f) => f.mbit);
  const fairness = Math.min(...rates) / Math.max(...rates);
  const totalOfB = m.aggregateMbit / rateMbit;
  // Goodput ≈ 95.6 % of B; allow for a TCP ramp in a short run, never above B.
  const ok = totalOfB > 0.85 && totalOfB <= 1.01 && fairness > 0.8;
  return {
    name,
    flows: m.flows,
    aggregateMbit: m.aggregateMbit,
    totalOfB,
    fairness,
    bytesPerRead: m.reads > 0 ? m.bytes / m.reads : 0,
    receiverCpuSecondsPerGiB: m.bytes > 0 ? m.receiverCpuSeconds / (m.bytes / 2 ** 30) : 0,
    senderCpuSecondsPerGiB: m.senderCpuSecondsPerGiB,
    ok,
  };
}

/**
 * Needs three distinct hosts. Each check runs `seconds` long. With `fanOut`, a fourth
 * check sends from one host to all the others at once (the registry's situation when
 * every node pulls from it): the flows must still sum to about B and share it fairly.
 */
export async function verifyShaping(a: Host, b: Host, c: Host, rateMbit: number, options: { seconds?: number; fanOut?: { from: Host; to: readonly Host[] } } = {}): Promise<ShapingCheck[]> {
  const seconds = options.seconds ?? 4;
  const checks = [
    judge(`one flow ${a.name}→${b.name}`, await flows([[a, b]], seconds), rateMbit),
    judge(`upload shared: ${a.name}→${b.name} + ${a.name}→${c.name}`, await flows([[a, b], [a, c]], seconds), rateMbit),
    judge(`download shared: ${b.name}→${a.name} + ${c.name}→${a.name}`, await flows([[b, a], [c, a]], seconds), rateMbit),
  ];
  const fan = options.fanOut;
  if (fan !== undefined && fan.to.length > 2) {
    // Many small flows need longer to settle than two, and htb serves each class a quantum
    // at a time: a flow must get FAN_OUT_QUANTA of them for one more or less not to read as
    // unfair (16 flows at 10 Mbit/s got about 9 each in 8 s: fairness 0.78-0.80).
    const fanSeconds = Math.max(seconds * 2, Math.ceil((FAN_OUT_QUANTA * QUANTUM_BYTES * 8 * fan.to.length) / (rateMbit * 1e6)));
    checks.push(judge(`fan-out ${fan.from.name}→${fan.to.length} hosts`, await flows(fan.to.map((t) => [fan.from, t] as const), fanSeconds), rateMbit));
  }
  return checks;
}
