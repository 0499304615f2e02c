/**
 * `npm run bench:idle` — what an idle swarm costs: a supernode and N node agents (16 by
 * default) as real processes on loopback, joined and doing nothing. After they have
 * joined and settled, each process's CPU time (user + sys from /proc/<pid>/stat) is
 * taken over a window and reported as a share of one core; the N node agents together
 * should stay under 1 % of a core (no schedule polling while nothing is pulled).
 * Writes load-tests/results/bench-idle-<date>.json. Run with --help for the flags.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '@shoal/cli';
import { freePort, httpOk, makeTempDir, minimalEnv, removeTempDir, spawnProcess, waitFor, type ManagedProcess } from '@shoal/testkit';
import { processCpuSeconds } from './netns/cpu.js';
import { SHOAL } from './lib/shoal-processes.js';
import { readdir, readFile } from 'node:fs/promises';
import { machineShares, monotonicUs, summariseProfile } from './lib/cpu-profile.js';

const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));
const USAGE = `usage: npm run bench:idle -- [options]
  --nodes N        idle node agents (16)
  --settle-s S     wait after every node is ready, before measuring (15)
  --window-s W     the measured window (60)
  --profile        run node agent 0 and the supernode with --cpu-prof and summarise the window
  -h, --help       this text
`;
const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: '16' },
    'settle-s': { type: 'string', default: '15' },
    'window-s': { type: 'string', default: '60' },
    profile: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const intArg = (name: string, text: string | undefined, min: number, max: number): number => {
  const v = Number(text);
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`--${name} must be an integer in [${min}, ${max}], got ${String(text)}`);
  return v;
};
const NODES = intArg('nodes', args.nodes, 1, 256);
const SETTLE_S = intArg('settle-s', args['settle-s'], 0, 3600);
const WINDOW_S = intArg('window-s', args['window-s'], 5, 3600);
const log = (msg: string): void => void process.stderr.write(`[bench-idle ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

/** CPU-seconds (user + sys) by thread name (`comm`, with the tid when names repeat). */
async function threadCpu(pid: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let tids: string[] = [];
  try {
    tids = await readdir(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(`${comm}[${tid === String(pid) ? 'main' : tid}]`, (Number(f[11]) + Number(f[12])) / 100);
    } catch {
      // the thread ended
    }
  }
  return out;
}

async function main(): Promise<void> {
  const dir = await makeTempDir('shoal-bench-idle');
  const procs: ManagedProcess[] = [];
  const profileDir = join(dir, 'profiles');
  const prof = (name: string): string[] => (args.profile ? ['--cpu-prof', '--cpu-prof-dir', join(profileDir, name)] : []);
  let windowUs: [number, number] = [0, 0];
  try {
    // An upstream nobody asks: idle agents never reach it.
    const env = minimalEnv({ SHOAL_PLAIN_HTTP: '127.0.0.1:9', SHOAL_LOG_LEVEL: 'warn' });
    const snPort = await freePort();
    const supernode = await spawnProcess({
      name: 'supernode',
      command: process.execPath,
      args: [...NODE_FLAGS, ...prof('supernode'), SHOAL, 'supernode'],
      env: { ...env, SHOAL_LISTEN: `127.0.0.1:${snPort}`, SHOAL_DATA: join(dir, 'supernode') },
      logDir: dir,
    });
    procs.push(supernode);
    await waitFor(() => httpOk(`http://127.0.0.1:${snPort}/readyz`), { process: supernode, description: 'supernode ready', timeoutMs: 60_000 });
    const nodes: ManagedProcess[] = [];
    for (let i = 0; i < NODES; i++) {
      const [proxyPort, peerPort] = [await freePort(), await freePort()];
      const p = await spawnProcess({
        name: `node${i}`,
        command: process.execPath,
        args: [...NODE_FLAGS, ...(i === 0 ? prof('node') : []), SHOAL, 'node'],
        env: {
          ...env,
          SHOAL_SUPERNODE: `http://127.0.0.1:${snPort}`,
          SHOAL_PROXY_LISTEN: `127.0.0.1:${proxyPort}`,
          SHOAL_PEER_LISTEN: `127.0.0.1:${peerPort}`,
          SHOAL_DATA: join(dir, `node${i}`),
        },
        logDir: dir,
      });
      procs.push(p);
      nodes.push(p);
      await waitFor(() => httpOk(`http://127.0.0.1:${proxyPort}/readyz`), { process: p, description: `node${i} ready`, timeoutMs: 60_000 });
    }
    log(`${NODES} node agents ready; settling ${SETTLE_S} s`);
    await new Promise((r) => setTimeout(r, SETTLE_S * 1000));
    const cpu = (): Promise<number[]> => Promise.all([supernode, ...nodes].map((p) => processCpuSeconds(p.pid)));
    const watched = { supernode: supernode.pid, 'node agent 1': nodes[Math.min(1, nodes.length - 1)]?.pid ?? supernode.pid };
    const threads0 = Object.fromEntries(await Promise.all(Object.entries(watched).map(async ([name, pid]) => [name, await threadCpu(pid)] as const)));
    const busy = machineShares();
    const c0 = await cpu();
    const t0 = performance.now();
    const w0 = monotonicUs();
    log(`measuring ${WINDOW_S} s`);
    await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
    const c1 = await cpu();
    windowUs = [w0, monotonicUs()];
    const threadLines: string[] = [];
    for (const [name, pid] of Object.entries(watched)) {
      const after = await threadCpu(pid);
      const before = threads0[name] ?? new Map<string, number>();
      const rows = [...after].map(([thread, sec]) => [thread, sec - (before.get(thread) ?? 0)] as const).filter(([, d]) => d > 0).sort((a, b) => b[1] - a[1]);
      threadLines.push(`${name}, CPU-s by thread: ${rows.length === 0 ? 'none' : rows.map(([t, d]) => `${t} ${d.toFixed(2)}`).join(', ')}`);
    }
    const wall = (performance.now() - t0) / 1000;
    const machine = (await busy.stop()).busy;
    const d = c1.map((v, i) => v - (c0[i] ?? 0));
    const sn = d[0] ?? 0;
    const perNode = d.slice(1);
    const nodesTotal = perNode.reduce((a, b) => a + b, 0);
    const result = {
      date: new Date().toISOString(),
      nodes: NODES,
      windowSeconds: wall,
      supernodeCoreShare: sn / wall,
      nodeAgentsCoreShare: nodesTotal / wall,
      perNodeCoreShare: perNode.map((s) => s / wall),
      machineBusy: machine,
    };
    await mkdir(RESULTS_DIR, { recursive: true });
    const file = join(RESULTS_DIR, `bench-idle-${result.date.replace(/[:.]/g, '-')}.json`);
    await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
    const pct = (x: number): string => `${(x * 100).toFixed(2)} %`;
    process.stdout.write(
      [
        '',
        `Idle swarm: ${NODES} node agents and a supernode on loopback, ${wall.toFixed(0)} s window (CPU from /proc/<pid>/stat; ticks are 10 ms)`,
        '',
        '| process | CPU-s in the window | share of one core |',
        '| --- | ---: | ---: |',
        `| ${NODES} node agents together | ${nodesTotal.toFixed(2)} | ${pct(result.nodeAgentsCoreShare)} (target < 1 %) |`,
        `| one node agent, max | ${Math.max(...perNode).toFixed(2)} | ${pct(Math.max(...result.perNodeCoreShare))} |`,
        `| supernode | ${sn.toFixed(2)} | ${pct(result.supernodeCoreShare)} |`,
        '',
        `machine CPU busy over the window: ${pct(machine)} (other work on the machine included)`,
        ...threadLines,
        `results: ${file}`,
        '',
      ].join('\n'),
    );
  } finally {
    for (const p of procs.reverse()) await p.stop().catch(() => {});
    if (args.profile) {
      for (const name of ['node', 'supernode']) {
        const files = await readdir(join(profileDir, name)).catch(() => [] as string[]);
        for (const f of files.filter((x) => x.endsWith('.cpuprofile'))) {
          const sum = summariseProfile(JSON.parse(await readFile(join(profileDir, name, f), 'utf8')), windowUs);
          process.stdout.write(
            [
              `${name === 'node' ? 'node agent 0' : 'supernode'}, idle window: ${(sum.sampledSeconds * 1000).toFixed(0)} ms sampled (idle excluded)`,
              '',
              '| self % | function | where |',
              '| ---: | --- | --- |',
              ...sum.topFunctions.slice(0, 15).map((x) => `| ${(x.share * 100).toFixed(1)} | ${x.name} | ${x.where} |`),
              '',
              '| total % | Shoal function | where |',
              '| ---: | --- | --- |',
              ...sum.shoalInclusive.slice(0, 15).map((x) => `| ${(x.share * 100).toFixed(1)} | ${x.name} | ${x.where} |`),
              '',
            ].join('\n'),
          );
        }
      }
    }
    await removeTempDir(dir);
  }
}

await main();
