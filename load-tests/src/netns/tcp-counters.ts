import { runInChecked } from './exec.js';

/**
 * TCP's own counters for a network namespace (`/proc/net/snmp` and `/proc/net/netstat`
 * belong to the namespace that reads them): what its TCP sent, how much of it again after
 * a loss, and how often a connection sat out a retransmission timeout. Read before and
 * after a pull, the difference is the pull's: segments sent again took link time from the
 * pieces, and a timeout holds a connection still for at least 200 ms.
 */
export interface TcpCounters {
  /** Data segments sent for the first time (TcpExt TCPOrigDataSent). */
  dataSegments: number;
  /** Segments sent again (Tcp RetransSegs). */
  resentSegments: number;
  /** Retransmission timeouts (TcpExt TCPTimeouts). */
  timeouts: number;
}

const FIELDS: ReadonlyArray<[keyof TcpCounters, string]> = [
  ['dataSegments', 'TcpExt.TCPOrigDataSent'],
  ['resentSegments', 'Tcp.RetransSegs'],
  ['timeouts', 'TcpExt.TCPTimeouts'],
];

/**
 * Parses `/proc/net/snmp` and `/proc/net/netstat` (in any order, or concatenated): each
 * is pairs of lines, `Prefix: Name Name ...` then `Prefix: value value ...`.
 */
export function parseTcpCounters(text: string): TcpCounters {
  const values = new Map<string, number>();
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  for (let i = 0; i + 1 < lines.length; i++) {
    const names = (lines[i] as string).split(/\s+/);
    const numbers = (lines[i + 1] as string).split(/\s+/);
    const prefix = names[0];
    if (prefix === undefined || !prefix.endsWith(':') || numbers[0] !== prefix || names.length !== numbers.length) continue;
    // A header's names are words; its values line starts with the same prefix.
    if (names.slice(1).some((n) => /^-?\d+$/.test(n))) continue;
    for (let j = 1; j < names.length; j++) values.set(`${prefix.slice(0, -1)}.${names[j] as string}`, Number(numbers[j]));
    i++;
  }
  const out = { dataSegments: 0, resentSegments: 0, timeouts: 0 };
  for (const [field, name] of FIELDS) {
    const v = values.get(name);
    if (v === undefined || !Number.isFinite(v) || v < 0) throw new Error(`no ${name} counter in /proc/net/snmp or /proc/net/netstat`);
    out[field] = v;
  }
  return out;
}

async function tcpCountersIn(ns: string): Promise<TcpCounters> {
  const r = await runInChecked(ns, 'cat', ['/proc/net/snmp', '/proc/net/netstat']);
  return parseTcpCounters(r.stdout);
}

/** What happened between two readings (`before` from the same namespace). */
export function tcpSince(after: TcpCounters, before: TcpCounters): TcpCounters {
  const out = { ...after };
  for (const [field] of FIELDS) out[field] -= before[field];
  return out;
}

export function tcpSum(list: readonly TcpCounters[]): TcpCounters {
  const sum = { dataSegments: 0, resentSegments: 0, timeouts: 0 };
  for (const c of list) for (const [field] of FIELDS) sum[field] += c[field];
  return sum;
}

/** "3.0 % of data segments sent again, 12 retransmission timeouts". */
export function describeTcp(c: TcpCounters): string {
  const share = c.dataSegments > 0 ? ((100 * c.resentSegments) / c.dataSegments).toFixed(1) : '0.0';
  return `${share} % of data segments sent again, ${c.timeouts} retransmission timeout${c.timeouts === 1 ? '' : 's'}`;
}

export interface HostsTcp {
  registry: TcpCounters;
  supernodeHost: TcpCounters;
  nodes: TcpCounters[];
}

/** What happened between two readings of every host: the nodes added up. */
export function hostsTcpSince(after: HostsTcp, before: HostsTcp): { registry: TcpCounters; supernodeHost: TcpCounters; nodes: TcpCounters } {
  return {
    registry: tcpSince(after.registry, before.registry),
    supernodeHost: tcpSince(after.supernodeHost, before.supernodeHost),
    nodes: tcpSum(after.nodes.map((a, i) => tcpSince(a, before.nodes[i] as TcpCounters))),
  };
}

/** Every host's counters at once; undefined (and said through `log`) when any cannot be read: the report leaves them out. */
export async function tcpOfHosts(registry: { ns: string }, supernodeHost: { ns: string }, nodes: ReadonlyArray<{ ns: string }>, log: (line: string) => void): Promise<HostsTcp | undefined> {
  try {
    const [r, s, n] = await Promise.all([tcpCountersIn(registry.ns), tcpCountersIn(supernodeHost.ns), Promise.all(nodes.map((h) => tcpCountersIn(h.ns)))]);
    return { registry: r, supernodeHost: s, nodes: n };
  } catch (err) {
    log(`cannot read the hosts' TCP counters: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

/** The congestion control new connections in a namespace get (a new namespace takes the machine's). */
export async function congestionControlIn(ns: string): Promise<string> {
  const r = await runInChecked(ns, 'cat', ['/proc/sys/net/ipv4/tcp_congestion_control']);
  return r.stdout.trim();
}

/** Gives new connections in `ns` this congestion control; a name the kernel does not have is an error that lists the ones it has. */
export async function setCongestionControl(ns: string, name: string): Promise<void> {
  const available = (await runInChecked(ns, 'cat', ['/proc/sys/net/ipv4/tcp_available_congestion_control'])).stdout.trim().split(/\s+/);
  if (!available.includes(name)) throw new Error(`--tcp-cc ${name}: this kernel offers ${available.join(', ')}`);
  await runInChecked(ns, 'sysctl', ['-q', '-w', `net.ipv4.tcp_congestion_control=${name}`]);
}
