/**
 * A switched LAN of hosts in network namespaces, every link shaped to the same rate.
 *
 *   [shoalb-reg] shoalb-eth ──veth── shoalb-p1  ┐
 *   [shoalb-sn]  shoalb-eth ──veth── shoalb-p2  ├─ shoalb-br0 (bridge) in [shoalb-br]
 *   [shoalb-n0]  shoalb-eth ──veth── shoalb-p10 ┘   ...
 *
 * Both ends of every veth are created directly in their namespaces (`ip -n ... link add
 * ... peer ... netns ...`), so nothing ever appears in the root namespace. Hosts get one
 * address in 10.213.0.0/24 and only the connected route: no default route, so nothing in
 * a namespace can reach anything outside them (loopback is per namespace).
 *
 * Shaping (htb, see shaping.ts): a host's upload is the egress of its own veth end, its
 * download the egress of the bridge-side end. Both have one class per peer host.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runChecked, runCommand } from '@shoal/testkit';
import { htbBatch } from './shaping.js';
import { runInChecked } from './exec.js';

/**
 * Every name this benchmark creates starts with it (namespaces, interfaces, temp dirs).
 * `SHOAL_BENCH_NETNS_TAG` (1–3 lowercase letters or digits, default `b`) gives runs that
 * share a machine names of their own: a run removes only leftovers with its own prefix.
 */
export const PREFIX = `shoal${benchTag(process.env.SHOAL_BENCH_NETNS_TAG)}-`;

function benchTag(value: string | undefined): string {
  if (value === undefined || value === '') return 'b';
  if (!/^[a-z0-9]{1,3}$/.test(value)) throw new Error(`SHOAL_BENCH_NETNS_TAG must be 1-3 lowercase letters or digits, got ${JSON.stringify(value)}`);
  return value;
}
export const SUBNET = '10.213.0';
export const BRIDGE_NS = `${PREFIX}br`;
const BRIDGE = `${PREFIX}br0`;
/** The host end's name, the same in every host namespace. */
export const HOST_IF = `${PREFIX}eth`;

export interface HostSpec {
  /** Namespace suffix: `reg` → `shoalb-reg`. */
  name: string;
  /** Last octet of the address. */
  octet: number;
}

export interface Host {
  name: string;
  ns: string;
  ip: string;
  octet: number;
  /** The bridge-side veth end, in BRIDGE_NS. */
  bridgePort: string;
}

export interface Topology {
  hosts: Host[];
  host(name: string): Host;
  rateMbit: number;
  /** Kills everything still running in our namespaces and deletes them. Idempotent. */
  destroy(): Promise<void>;
}

async function ip(args: readonly string[]): Promise<void> {
  await runChecked('ip', args, { timeoutMs: 30_000 });
}

async function tcBatch(ns: string, lines: readonly string[]): Promise<void> {
  // `tc -batch -` would need stdin; a heredoc through sh keeps it to one exec per device.
  await runInChecked(ns, 'sh', ['-c', 'tc -batch - <<"EOF"\n' + lines.join('\n') + '\nEOF\n'], { timeoutMs: 60_000 });
}

/** Namespaces with our prefix that exist now. */
export async function ourNamespaces(): Promise<string[]> {
  const r = await runCommand('ip', ['netns', 'list'], { timeoutMs: 10_000 });
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(PREFIX));
}

async function killAndDelete(ns: string): Promise<void> {
  const pids = await runCommand('ip', ['netns', 'pids', ns], { timeoutMs: 10_000 });
  for (const pid of pids.stdout.split(/\s+/).filter((p) => /^\d+$/.test(p))) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone
    }
  }
  // A killed process may hold the namespace's interfaces a moment longer; delete anyway
  // (the namespace goes when its last user does).
  await runCommand('ip', ['netns', 'delete', ns], { timeoutMs: 10_000 });
}

/**
 * Removes what a crashed earlier run left: processes in our namespaces, the namespaces
 * (and with them every veth and the bridge), and our temp dirs (after unmounting
 * anything still mounted under them), except `keep`. Returns what it removed.
 */
export async function cleanLeftovers(keep: readonly string[] = []): Promise<string[]> {
  const removed: string[] = [];
  for (const ns of await ourNamespaces()) {
    await killAndDelete(ns);
    removed.push(`netns ${ns}`);
  }
  const tmp = tmpdir();
  const dirs = (await readdir(tmp)).filter((d) => d.startsWith(PREFIX) || d.startsWith(`shoal-${PREFIX}`))
    .map((d) => join(tmp, d))
    .filter((d) => !keep.includes(d));
  if (dirs.length > 0) {
    const mounts = (await readFile('/proc/self/mountinfo', 'utf8'))
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((p): p is string => p !== undefined && dirs.some((d) => p.startsWith(`${d}/`)))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) await runCommand('umount', ['-l', m], { timeoutMs: 10_000 });
    for (const d of dirs) {
      await rm(d, { recursive: true, force: true, maxRetries: 3 });
      removed.push(d);
    }
  }
  return removed;
}

/** Last-resort synchronous teardown for `process.on('exit')`: namespaces (with their processes) and temp dirs. */
export function destroySync(keep: readonly string[] = []): void {
  try {
    for (const d of readdirSync(tmpdir())) {
      const path = join(tmpdir(), d);
      if ((d.startsWith(PREFIX) || d.startsWith(`shoal-${PREFIX}`)) && !keep.includes(path)) rmSync(path, { recursive: true, force: true });
    }
  } catch {
    // best effort
  }
  let list = '';
  try {
    list = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return;
  }
  for (const ns of list.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter((n) => n.startsWith(PREFIX))) {
    try {
      const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      for (const pid of pids.split(/\s+/).filter((p) => /^\d+$/.test(p))) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone
        }
      }
      execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' });
    } catch {
      // best effort
    }
  }
}

/** Ethernet's MTU, the links' default. */
export const DEFAULT_MTU = 1500;

/**
 * `mtu`: every veth end's and the bridge's. At low rates TCP sends small offload packets
 * (about 1 ms of its pacing rate, at least two segments), so the emulated path's per-packet
 * work, charged to the two cores, grows per byte as the rate falls; a larger MTU makes
 * each packet carry more (as jumbo frames do on many cluster networks).
 */
export async function createTopology(specs: readonly HostSpec[], rateMbit: number, mtu = DEFAULT_MTU): Promise<Topology> {
  if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65_535) throw new Error(`mtu must be an integer in [576, 65535], got ${mtu}`);
  const hosts: Host[] = specs.map((s) => ({ name: s.name, ns: `${PREFIX}${s.name}`, ip: `${SUBNET}.${s.octet}`, octet: s.octet, bridgePort: `${PREFIX}p${s.octet}` }));
  let destroyed: Promise<void> | undefined;
  const topology: Topology = {
    hosts,
    rateMbit,
    host(name) {
      const h = hosts.find((x) => x.name === name);
      if (h === undefined) throw new Error(`no host ${name}`);
      return h;
    },
    destroy() {
      destroyed ??= (async () => {
        for (const ns of await ourNamespaces()) await killAndDelete(ns);
      })();
      return destroyed;
    },
  };
  try {
    await ip(['netns', 'add', BRIDGE_NS]);
    await ip(['-n', BRIDGE_NS, 'link', 'add', BRIDGE, 'type', 'bridge']);
    await ip(['-n', BRIDGE_NS, 'link', 'set', BRIDGE, 'mtu', String(mtu)]);
    await ip(['-n', BRIDGE_NS, 'link', 'set', 'lo', 'up']);
    await ip(['-n', BRIDGE_NS, 'link', 'set', BRIDGE, 'up']);
    for (const h of hosts) {
      await ip(['netns', 'add', h.ns]);
      await ip(['-n', BRIDGE_NS, 'link', 'add', h.bridgePort, 'type', 'veth', 'peer', 'name', HOST_IF, 'netns', h.ns]);
      await ip(['-n', BRIDGE_NS, 'link', 'set', h.bridgePort, 'mtu', String(mtu)]);
      await ip(['-n', h.ns, 'link', 'set', HOST_IF, 'mtu', String(mtu)]);
      await ip(['-n', BRIDGE_NS, 'link', 'set', h.bridgePort, 'master', BRIDGE]);
      await ip(['-n', BRIDGE_NS, 'link', 'set', h.bridgePort, 'up']);
      // No IPv6 chatter (router solicitations, DAD) on the measured links.
      await runInChecked(h.ns, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1']);
      await ip(['-n', h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', HOST_IF]);
      await ip(['-n', h.ns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', h.ns, 'link', 'set', HOST_IF, 'up']);
    }
    for (const h of hosts) {
      const others = hosts.filter((o) => o !== h).map((o) => o.ip);
      // Upload: this host's egress, one class per destination.
      await tcBatch(h.ns, htbBatch({ dev: HOST_IF, rateMbit, peers: others, match: 'dst', hostCount: hosts.length }));
      // Download: the bridge port's egress towards this host, one class per source.
      await tcBatch(BRIDGE_NS, htbBatch({ dev: h.bridgePort, rateMbit, peers: others, match: 'src', hostCount: hosts.length }));
    }
  } catch (err) {
    await topology.destroy();
    throw err;
  }
  return topology;
}
