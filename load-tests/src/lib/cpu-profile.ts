/**
 * Reading V8 CPU profiles (`node --cpu-prof`, the `.cpuprofile` JSON that Chrome DevTools
 * loads) into the few numbers a report needs, and the machine's busy share (and the
 * hypervisor's part of it) over a window.
 */
import { readFileSync } from 'node:fs';
import { parseProcStatCpu, type CpuTotals } from '../netns/cpu.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

export interface CpuProfile {
  /** µs on the monotonic clock (the same as `process.hrtime` in any process on this machine). */
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Sampled time outside `(idle)`, seconds. */
  sampledSeconds: number;
  gcShare: number;
  /** Self time by function, share of sampled time, largest first. */
  topFunctions: Array<{ name: string; where: string; share: number; seconds: number }>;
  /** Self time by module: a workspace package's file, a dependency, a Node internal area. */
  byModule: Array<{ module: string; share: number; seconds: number }>;
  /** Self time of native frames (no script: C++ bindings, builtins) by the nearest Shoal frame that called them. */
  nativeByCaller: Array<{ name: string; caller: string; share: number; seconds: number }>;
  /** Total (self + callees) time of Shoal's own functions (services/, packages/), largest first. */
  shoalInclusive: Array<{ name: string; where: string; share: number; seconds: number }>;
}

function isProfile(x: unknown): x is CpuProfile {
  if (typeof x !== 'object' || x === null) return false;
  const p = x as Record<string, unknown>;
  return Array.isArray(p.nodes) && Array.isArray(p.samples) && Array.isArray(p.timeDeltas);
}

/** A short place for a script URL: `services/peer/dist/x.js`, `undici/lib/...`, `node:internal/...`. */
function placeOf(url: string): string {
  if (url === '') return '';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const ws = /\/((?:services|packages|load-tests)\/.*)$/.exec(url);
  if (ws !== null) return ws[1] as string;
  return url.replace(/^file:\/\//, '');
}

/** The module a place belongs to: a workspace file, a dependency package, or a Node internal directory. */
function moduleOf(place: string, name: string): string {
  if (place === '') return name.startsWith('(') ? name : '(native: V8 builtins, C++ bindings)';
  if (place.startsWith('node:')) return place.split('/').slice(0, 2).join('/');
  if (/^(services|packages|load-tests)\//.test(place)) return place;
  const parts = place.split('/');
  return (parts[0]?.startsWith('@') === true ? parts.slice(0, 2) : parts.slice(0, 1)).join('/');
}

/** Now on the clock V8's profiles use (CLOCK_MONOTONIC, µs): windows taken here select samples of another process. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** Summarises a profile; with `window` ([start, end] µs, see monotonicUs) only the samples inside it. */
export function summariseProfile(json: unknown, window?: readonly [number, number]): ProfileSummary {
  if (!isProfile(json)) throw new Error('not a V8 CPU profile (nodes, samples, timeDeltas)');
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of json.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const isShoal = (n: ProfileNode): boolean => /\/(services|packages)\/[^/]+\/dist\//.test(n.callFrame.url);
  const label = (n: ProfileNode): string => {
    const place = placeOf(n.callFrame.url);
    return `${n.callFrame.functionName === '' ? '(anonymous)' : n.callFrame.functionName}${place === '' ? '' : ` ${place}:${n.callFrame.lineNumber + 1}`}`;
  };
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time before sample i; attribute it to sample i (as DevTools does).
  let at = typeof json.startTime === 'number' ? json.startTime : 0;
  for (let i = 0; i < json.samples.length; i++) {
    const id = json.samples[i] as number;
    const dt = Math.max(0, json.timeDeltas[i] ?? 0);
    at += dt;
    if (window !== undefined && (at < window[0] || at > window[1])) continue;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  }
  const fns = new Map<string, { name: string; where: string; us: number }>();
  const modules = new Map<string, number>();
  let total = 0;
  let gc = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (n === undefined) continue;
    const name = n.callFrame.functionName === '' ? '(anonymous)' : n.callFrame.functionName;
    if (name === '(idle)') continue;
    total += us;
    if (name === '(garbage collector)') gc += us;
    const place = placeOf(n.callFrame.url);
    const where = place === '' ? '' : `${place}:${n.callFrame.lineNumber + 1}`;
    const key = `${name}@${where}`;
    const f = fns.get(key) ?? { name, where, us: 0 };
    f.us += us;
    fns.set(key, f);
    const mod = moduleOf(place, name);
    modules.set(mod, (modules.get(mod) ?? 0) + us);
  }
  const share = (us: number): number => (total === 0 ? 0 : us / total);
  const native = new Map<string, { name: string; caller: string; us: number }>();
  const inclusive = new Map<string, { name: string; where: string; us: number }>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (n === undefined || n.callFrame.functionName === '(idle)') continue;
    // Each Shoal frame on the stack gets the sample once (recursion counted once).
    const seen = new Set<string>();
    let callerLabel: string | undefined;
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur);
      if (f === undefined) break;
      if (!isShoal(f)) continue;
      const place = placeOf(f.callFrame.url);
      const where = `${place}:${f.callFrame.lineNumber + 1}`;
      const name = f.callFrame.functionName === '' ? '(anonymous)' : f.callFrame.functionName;
      callerLabel ??= `${name} ${where}`;
      const key = `${name}@${where}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const e = inclusive.get(key) ?? { name, where, us: 0 };
      e.us += us;
      inclusive.set(key, e);
    }
    if (n.callFrame.url === '' && !n.callFrame.functionName.startsWith('(')) {
      const key = `${n.callFrame.functionName}<-${callerLabel ?? '?'}`;
      const e = native.get(key) ?? { name: label(n), caller: callerLabel ?? '(no Shoal frame: Node internals, dependencies)', us: 0 };
      e.us += us;
      native.set(key, e);
    }
  }
  return {
    nativeByCaller: [...native.values()].sort((a, b) => b.us - a.us).map((e) => ({ name: e.name, caller: e.caller, share: share(e.us), seconds: e.us / 1e6 })),
    shoalInclusive: [...inclusive.values()].sort((a, b) => b.us - a.us).map((e) => ({ name: e.name, where: e.where, share: share(e.us), seconds: e.us / 1e6 })),
    sampledSeconds: total / 1e6,
    gcShare: share(gc),
    topFunctions: [...fns.values()].sort((a, b) => b.us - a.us).map((f) => ({ name: f.name, where: f.where, share: share(f.us), seconds: f.us / 1e6 })),
    byModule: [...modules].sort((a, b) => b[1] - a[1]).map(([module, us]) => ({ module, share: share(us), seconds: us / 1e6 })),
  };
}

/**
 * The whole machine's CPU over a window (all cores; from /proc/stat): its busy share,
 * and the share the hypervisor took for other guests (steal), which a VM counts as busy.
 */
export function machineShares(): { stop(): Promise<{ busy: number; steal: number }> } {
  const read = (): CpuTotals => parseProcStatCpu(readFileSync('/proc/stat', 'utf8'));
  const a = read();
  return {
    stop: () => {
      const b = read();
      const total = Math.max(1, b.total - a.total);
      return Promise.resolve({ busy: (b.busy - a.busy) / total, steal: (b.steal - a.steal) / total });
    },
  };
}
