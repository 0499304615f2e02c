/**
 * `npm run bench:cpu` — where the CPU goes on the cold path, per process, per GiB.
 *
 * One blob (one layer of --size-mib, 512 MiB by default) is fetched by curl through a
 * node agent's proxy over loopback, with every part a real process:
 *
 *   docker-registry → `shoal supernode` (back-to-source) → `shoal node` (receives,
 *   verifies, stores, serves) → curl → /dev/null
 *
 * then once more from the same node (warm: a local read). Before the measured fetches, a
 * smaller blob (--warmup-mib; --warmup-blobs of them, each a different blob) takes the same
 * cold path, so that the one-time work of fresh processes (V8 compiling the hot functions,
 * first connections) is not counted per GiB; --warmup-mib 0 counts it. Each Shoal
 * process's CPU time (user + sys from /proc/<pid>/stat) and docker-registry's is taken
 * around each fetch and reported per GiB of the blob, with the machine's CPU busy
 * fraction over the fetch.
 * Then the floor (cpu-floor.ts): the same blob through two bare Node processes in the
 * Shoal processes' places (hashes, file writes, one request per piece, nothing else),
 * measured the same way, so that the run says how much of each Shoal process's figure any
 * Node process moving these bytes spends on this machine at this moment (--no-floor skips it).
 * The whole thing runs twice: first plain (the numbers), then with `node --cpu-prof` on
 * the supernode and the node agent (the profiler costs CPU itself, so its run gives the
 * shares, not the totals). Each profile is summarised: self time by function and by
 * module, as a share of the process's sampled time (idle excluded).
 *
 * Writes load-tests/results/bench-cpu-<date>.json and keeps the .cpuprofile files (load
 * them in Chrome DevTools' Performance panel or speedscope). Run with --help for flags.
 */
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '@shoal/cli';
import {
  buildImage,
  freePort,
  httpOk,
  makeTempDir,
  minimalEnv,
  pushImage,
  removeTempDir,
  requireTools,
  runChecked,
  spawnProcess,
  startRegistry,
  waitFor,
  type ManagedProcess,
  type RunningRegistry,
} from '@shoal/testkit';
import { mainThreadCpuSeconds, processCpuSeconds } from './netns/cpu.js';
import { freshFileWriteCpuPerGiB } from './lib/fresh-write.js';
import { peakRssMiB, SHOAL } from './lib/shoal-processes.js';
import { machineShares, monotonicUs, summariseProfile, type ProfileSummary } from './lib/cpu-profile.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));
const USAGE = `usage: npm run bench:cpu -- [options]
  --size-mib S     the blob's size, MiB (512)
  --warmup-mib W   each warm-up blob's size, MiB (32; 0: no warm-up)
  --warmup-blobs K distinct warm-up blobs fetched cold first, one after another, not measured (1)
  --top K          functions listed per profile (20)
  --no-profile     only the plain run (no --cpu-prof run)
  --no-floor       without the floor: the same bytes through two bare Node processes (cpu-floor.ts)
  --summarise DIR  only print the summary of the .cpuprofile files in DIR (a kept run)
  --keep           keep the work dir (registry data, each pass's stores and process logs)
  -h, --help       this text
environment: SHOAL_BENCH_NODE_ARGS  more node flags for the supernode and the node agent (e.g. --trace-gc)
`;

const { values: args } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '512' },
    'warmup-mib': { type: 'string', default: '32' },
    'warmup-blobs': { type: 'string', default: '1' },
    top: { type: 'string', default: '20' },
    profile: { type: 'boolean', default: true },
    floor: { type: 'boolean', default: true },
    keep: { type: 'boolean', default: false },
    summarise: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  allowNegative: true,
});
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const SIZE_MIB = Number(args['size-mib']);
if (!Number.isInteger(SIZE_MIB) || SIZE_MIB < 1 || SIZE_MIB > 16 * 1024) throw new Error(`--size-mib must be an integer in [1, 16384], got ${String(args['size-mib'])}`);
const TOP = Number(args.top);
const WARMUP_MIB = Number(args['warmup-mib']);
if (!Number.isInteger(WARMUP_MIB) || WARMUP_MIB < 0 || WARMUP_MIB > 1024) throw new Error(`--warmup-mib must be an integer in [0, 1024], got ${String(args['warmup-mib'])}`);
const WARMUP_BLOBS = WARMUP_MIB === 0 ? 0 : Number(args['warmup-blobs']);
if (!Number.isInteger(WARMUP_BLOBS) || WARMUP_BLOBS < 0 || WARMUP_BLOBS > 16) throw new Error(`--warmup-blobs must be an integer in [0, 16], got ${String(args['warmup-blobs'])}`);

const log = (msg: string): void => void process.stderr.write(`[bench-cpu ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

interface Shoal {
  supernode: ManagedProcess;
  node: ManagedProcess;
  proxyUrl: string;
  stop(): Promise<void>;
}

async function startShoal(dir: string, registry: RunningRegistry, profileDir: string | undefined): Promise<Shoal> {
  const env = minimalEnv({ SHOAL_PLAIN_HTTP: registry.host, SHOAL_LOG_LEVEL: 'warn' });
  // SHOAL_BENCH_NODE_ARGS (e.g. `--trace-gc`): more node flags for both Shoal processes, as in bench:swarm.
  const extra = (process.env.SHOAL_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const prof = (name: string): string[] => [...extra, ...(profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', join(profileDir, name)])];
  const snPort = await freePort();
  const supernode = await spawnProcess({
    name: 'supernode',
    command: process.execPath,
    args: [...NODE_FLAGS, ...prof('supernode'), SHOAL, 'supernode'],
    env: { ...env, SHOAL_LISTEN: `127.0.0.1:${snPort}`, SHOAL_DATA: join(dir, 'supernode') },
    logDir: dir,
  });
  await waitFor(() => httpOk(`http://127.0.0.1:${snPort}/readyz`), { process: supernode, description: 'supernode ready' });
  const [proxyPort, peerPort] = [await freePort(), await freePort()];
  const node = await spawnProcess({
    name: 'node',
    command: process.execPath,
    args: [...NODE_FLAGS, ...prof('node'), SHOAL, 'node'],
    env: {
      ...env,
      SHOAL_SUPERNODE: `http://127.0.0.1:${snPort}`,
      SHOAL_PROXY_LISTEN: `127.0.0.1:${proxyPort}`,
      SHOAL_PEER_LISTEN: `127.0.0.1:${peerPort}`,
      SHOAL_DATA: join(dir, 'node'),
    },
    logDir: dir,
  });
  const proxyUrl = `http://127.0.0.1:${proxyPort}`;
  await waitFor(() => httpOk(`${proxyUrl}/readyz`), { process: node, description: 'node ready' });
  // Let start-up work (JIT of the first requests, the supernode session) settle out of the window.
  await new Promise((r) => setTimeout(r, 2_000));
  return {
    supernode,
    node,
    proxyUrl,
    async stop() {
      // SIGTERM: shoal closes and exits normally, which is when --cpu-prof writes its file.
      await node.stop();
      await supernode.stop();
    },
  };
}

interface FetchCost {
  seconds: number;
  mibPerSecond: number;
  /** CPU-seconds of each process over the fetch. */
  cpuSeconds: { supernode: number; node: number; registry: number };
  /** The same per GiB of the blob. */
  cpuPerGiB: { supernode: number; node: number; registry: number };
  /** The Shoal processes' main threads alone, per GiB (the rest: libuv's file I/O pool, V8's GC and compiler threads). */
  mainThreadCpuPerGiB: { supernode: number; node: number };
  machineBusy: number;
  /** The share of the machine's CPU time the hypervisor gave other guests over the fetch (counted in machineBusy). */
  machineSteal: number;
  /** The fetch's window on the monotonic clock, µs (selects profile samples). */
  windowUs: [number, number];
  /** Each Shoal process's peak resident memory since it started (VmHWM), MiB, read right after the fetch. */
  peakRssMiB: { supernode: number; node: number };
}

/** Fetches `url` with curl to /dev/null; throws unless exactly `bytes` came. */
async function curlBlob(url: string, bytes: number, what: string): Promise<void> {
  const r = await runChecked('curl', ['-sS', '--noproxy', '*', '-o', '/dev/null', '-w', '%{size_download}', url], { timeoutMs: 600_000 });
  if (Number(r.stdout.trim()) !== bytes) throw new Error(`${what}: curl got ${r.stdout.trim()} bytes, expected ${bytes}`);
}

/** The warm-up blobs, one after another, unmeasured, a second apart. */
async function warmUp(warmups: ReadonlyArray<{ urlPath: string; bytes: number }>, urlOf: (w: { urlPath: string; bytes: number }) => string): Promise<void> {
  for (const w of warmups) {
    await curlBlob(urlOf(w), w.bytes, 'warm-up');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

async function measuredFetch(url: string, pids: { supernode: number; node: number; registry: number }, bytes: number): Promise<FetchCost> {
  const cpu = async (): Promise<{ supernode: number; node: number; registry: number; supernodeMain: number; nodeMain: number }> => ({
    supernode: await processCpuSeconds(pids.supernode),
    node: await processCpuSeconds(pids.node),
    registry: await processCpuSeconds(pids.registry),
    supernodeMain: await mainThreadCpuSeconds(pids.supernode),
    nodeMain: await mainThreadCpuSeconds(pids.node),
  });
  const machine = machineShares();
  const c0 = await cpu();
  const t0 = performance.now();
  const w0 = monotonicUs();
  await curlBlob(url, bytes, 'the measured fetch');
  const seconds = (performance.now() - t0) / 1000;
  const w1 = monotonicUs();
  const c1 = await cpu();
  const shares = await machine.stop();
  const d = { supernode: c1.supernode - c0.supernode, node: c1.node - c0.node, registry: c1.registry - c0.registry };
  const g = bytes / GiB;
  return {
    seconds,
    mibPerSecond: bytes / MiB / seconds,
    cpuSeconds: d,
    cpuPerGiB: { supernode: d.supernode / g, node: d.node / g, registry: d.registry / g },
    mainThreadCpuPerGiB: { supernode: (c1.supernodeMain - c0.supernodeMain) / g, node: (c1.nodeMain - c0.nodeMain) / g },
    machineBusy: shares.busy,
    machineSteal: shares.steal,
    windowUs: [w0, w1],
    peakRssMiB: { supernode: await peakRssMiB(pids.supernode), node: await peakRssMiB(pids.node) },
  };
}

async function onePass(
  work: string,
  registry: RunningRegistry,
  blobUrlPath: string,
  bytes: number,
  profileDir: string | undefined,
  warmups: ReadonlyArray<{ urlPath: string; bytes: number }>,
  keep: boolean,
): Promise<{ cold: FetchCost; warm: FetchCost }> {
  // Inside the work dir, so that --keep keeps each pass's stores and process logs.
  const dir = await mkdtemp(join(work, profileDir === undefined ? 'plain-' : 'profiled-'));
  try {
    const shoal = await startShoal(dir, registry, profileDir);
    try {
      const pids = { supernode: shoal.supernode.pid, node: shoal.node.pid, registry: registry.process.pid };
      const ns = `?ns=${encodeURIComponent(registry.host)}`;
      await warmUp(warmups, (w) => `${shoal.proxyUrl}${w.urlPath}${ns}`);
      const url = `${shoal.proxyUrl}${blobUrlPath}${ns}`;
      const cold = await measuredFetch(url, pids, bytes);
      const warm = await measuredFetch(url, pids, bytes);
      return { cold, warm };
    } finally {
      await shoal.stop();
    }
  } finally {
    if (!keep) await removeTempDir(dir);
  }
}

const FLOOR = fileURLToPath(new URL('./cpu-floor.js', import.meta.url));

/**
 * The floor (cpu-floor.ts): the cold fetch's bytes through two bare Node
 * processes in the supernode's and the node agent's places, after the same
 * warm-ups, measured the same way. Its `supernode` and `node` are the seed and
 * the sink.
 */
async function floorPass(work: string, registry: RunningRegistry, blobUrlPath: string, bytes: number, warmups: ReadonlyArray<{ urlPath: string; bytes: number }>, keep: boolean): Promise<FetchCost> {
  const dir = await mkdtemp(join(work, 'floor-'));
  const env = minimalEnv();
  const [seedPort, sinkPort] = [await freePort(), await freePort()];
  const seed = await spawnProcess({ name: 'floor-seed', command: process.execPath, args: [...NODE_FLAGS, FLOOR, 'seed', `http://${registry.host}`, dir, String(seedPort)], env, logDir: dir });
  try {
    const sink = await spawnProcess({ name: 'floor-sink', command: process.execPath, args: [...NODE_FLAGS, FLOOR, 'sink', `http://127.0.0.1:${seedPort}`, dir, String(sinkPort)], env, logDir: dir });
    try {
      await waitFor(() => httpOk(`http://127.0.0.1:${seedPort}/readyz`), { process: seed, description: 'floor seed ready' });
      await waitFor(() => httpOk(`http://127.0.0.1:${sinkPort}/readyz`), { process: sink, description: 'floor sink ready' });
      const url = (path: string, size: number): string => `http://127.0.0.1:${sinkPort}/blob?path=${encodeURIComponent(path)}&size=${size}`;
      await warmUp(warmups, (w) => url(w.urlPath, w.bytes));
      return await measuredFetch(url(blobUrlPath, bytes), { supernode: seed.pid, node: sink.pid, registry: registry.process.pid }, bytes);
    } finally {
      await sink.stop();
    }
  } finally {
    await seed.stop();
    if (!keep) await removeTempDir(dir);
  }
}

async function profilesIn(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f));
  } catch {
    return [];
  }
}

function costTable(title: string, c: { cold: FetchCost; warm: FetchCost }): string[] {
  const row = (name: string, f: FetchCost): string =>
    `| ${name} | ${f.seconds.toFixed(2)} s (${f.mibPerSecond.toFixed(0)} MiB/s) | ${f.cpuPerGiB.supernode.toFixed(2)} (${f.mainThreadCpuPerGiB.supernode.toFixed(2)}) | ${f.cpuPerGiB.node.toFixed(2)} (${f.mainThreadCpuPerGiB.node.toFixed(2)}) | ${f.cpuPerGiB.registry.toFixed(2)} | ${(f.machineBusy * 100).toFixed(0)} % (${(f.machineSteal * 100).toFixed(1)} %) |`;
  return [
    title,
    '',
    '| fetch | time | supernode CPU-s/GiB (main thread) | node agent CPU-s/GiB (main thread) | docker-registry CPU-s/GiB | machine CPU busy (of it, stolen by the hypervisor) |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    row('cold (registry → supernode → node → curl)', c.cold),
    row('warm (node\'s store → curl)', c.warm),
    '',
    `Peak resident memory since start (VmHWM), read after the cold fetch: the supernode ${c.cold.peakRssMiB.supernode.toFixed(0)} MiB, the node agent ${c.cold.peakRssMiB.node.toFixed(0)} MiB.`,
    '',
  ];
}

/** The floor beside the plain run's cold fetch, and what each Shoal process spent above it. */
function floorLines(cold: FetchCost, floor: FetchCost): string[] {
  const f = floor.cpuPerGiB;
  const c = cold.cpuPerGiB;
  return [
    'The floor: the same blob through two bare Node processes in the Shoal processes\' places, with none of Shoal\'s code (load-tests/src/cpu-floor.ts: the piece and blob hashes, the file writes, one request per piece), just after:',
    '',
    '| fetch | time | in the supernode\'s place, CPU-s/GiB (main thread) | in the node agent\'s place (main thread) | docker-registry CPU-s/GiB | machine CPU busy (stolen) |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    `| the floor | ${floor.seconds.toFixed(2)} s (${floor.mibPerSecond.toFixed(0)} MiB/s) | ${f.supernode.toFixed(2)} (${floor.mainThreadCpuPerGiB.supernode.toFixed(2)}) | ${f.node.toFixed(2)} (${floor.mainThreadCpuPerGiB.node.toFixed(2)}) | ${f.registry.toFixed(2)} | ${(floor.machineBusy * 100).toFixed(0)} % (${(floor.machineSteal * 100).toFixed(1)} %) |`,
    '',
    `Shoal above the floor, cold: the supernode ${(c.supernode - f.supernode).toFixed(2)} CPU-s/GiB (${(c.supernode / f.supernode).toFixed(2)} × the floor), the node agent ${(c.node - f.node).toFixed(2)} (${(c.node / f.node).toFixed(2)} ×).`,
    '',
  ];
}

function profileTable(name: string, p: ProfileSummary): string[] {
  return [
    `${name}: ${p.sampledSeconds.toFixed(2)} s sampled (idle excluded), ${(p.gcShare * 100).toFixed(1)} % in the garbage collector`,
    '',
    '| self % | function | where |',
    '| ---: | --- | --- |',
    ...p.topFunctions.slice(0, TOP).map((f) => `| ${(f.share * 100).toFixed(1)} | ${f.name} | ${f.where} |`),
    '',
    '| self % | module |',
    '| ---: | --- |',
    ...p.byModule.slice(0, 12).map((m) => `| ${(m.share * 100).toFixed(1)} | ${m.module} |`),
    '',
    'Native frames (C++ bindings, builtins) by the nearest Shoal function on their stack:',
    '',
    '| self % | native | called from |',
    '| ---: | --- | --- |',
    ...p.nativeByCaller.slice(0, TOP).map((f) => `| ${(f.share * 100).toFixed(1)} | ${f.name} | ${f.caller} |`),
    '',
    'Shoal functions by total time (self and everything they call):',
    '',
    '| total % | function | where |',
    '| ---: | --- | --- |',
    ...p.shoalInclusive.slice(0, TOP).map((f) => `| ${(f.share * 100).toFixed(1)} | ${f.name} | ${f.where} |`),
    '',
  ];
}

async function main(): Promise<void> {
  await requireTools(['docker-registry', 'skopeo']);
  const work = await makeTempDir('shoal-bench-cpu');
  try {
    log(`building a one-layer ${SIZE_MIB} MiB image in ${work}`);
    const layers = [{ sizeBytes: SIZE_MIB * MiB, seed: `bench-cpu-${SIZE_MIB}` }];
    for (let i = 0; i < WARMUP_BLOBS; i++) layers.push({ sizeBytes: WARMUP_MIB * MiB, seed: `bench-cpu-warmup-${WARMUP_MIB}-${i}` });
    const image = await buildImage({ dir: join(work, 'layout'), tag: 'cpu', layers });
    const layer = image.layers[0];
    if (layer === undefined) throw new Error('no layer');
    const warmups = image.layers.slice(1).map((l) => ({ urlPath: `/v2/bench/cpu/blobs/${l.digest}`, bytes: l.sizeBytes }));
    const registry = await startRegistry();
    try {
      await pushImage({ layoutDir: image.layoutDir, tag: 'cpu', registry: registry.host, repository: 'bench/cpu' });
      const path = `/v2/bench/cpu/blobs/${layer.digest}`;
      const freshWriteBefore = await freshFileWriteCpuPerGiB(work, layer.sizeBytes);
      log('plain run (no profiler)');
      const plain = await onePass(work, registry, path, layer.sizeBytes, undefined, warmups, args.keep);
      const freshWriteAfter = await freshFileWriteCpuPerGiB(work, layer.sizeBytes);
      let floor: FetchCost | undefined;
      if (args.floor) {
        log('floor run (the same bytes through two bare Node processes)');
        floor = await floorPass(work, registry, path, layer.sizeBytes, warmups, args.keep);
      }
      const lines = [
        '',
        ...costTable(`One ${SIZE_MIB} MiB blob over loopback${WARMUP_BLOBS > 0 ? ` (after ${WARMUP_BLOBS === 1 ? 'a' : WARMUP_BLOBS} ${WARMUP_MIB} MiB warm-up blob${WARMUP_BLOBS === 1 ? '' : 's'})` : ''}, CPU-seconds per GiB of blob (user + sys from /proc):`, plain),
        `Writing ${SIZE_MIB} MiB to a new file on the same disk (1 MiB writes, four in flight, as a store writes; a separate process), just before and just after: ${freshWriteBefore.toFixed(2)} and ${freshWriteAfter.toFixed(2)} CPU-s/GiB. Each Shoal process writes the blob once, so this much of its count is what the machine charges for new page-cache pages.`,
        '',
        ...(floor === undefined ? [] : floorLines(plain.cold, floor)),
      ];
      const result: Record<string, unknown> = { date: new Date().toISOString(), sizeBytes: layer.sizeBytes, warmupBytes: warmups.reduce((sum, w) => sum + w.bytes, 0), warmupBlobs: warmups.length, plain, floor, freshFileWriteCpuPerGiB: [freshWriteBefore, freshWriteAfter] };
      if (args.profile) {
        const profileDir = join(RESULTS_DIR, `bench-cpu-${new Date().toISOString().replace(/[:.]/g, '-')}-profiles`);
        await mkdir(profileDir, { recursive: true });
        log(`profiled run (node --cpu-prof → ${profileDir})`);
        const profiled = await onePass(work, registry, path, layer.sizeBytes, profileDir, warmups, args.keep);
        lines.push(...costTable('The profiled run (the profiler adds its own cost):', profiled));
        const summaries: Record<string, ProfileSummary> = {};
        for (const proc of ['supernode', 'node']) {
          for (const file of await profilesIn(join(profileDir, proc))) {
            const s = summariseProfile(JSON.parse(await readFile(file, 'utf8')), profiled.cold.windowUs);
            summaries[proc] = s;
            lines.push(...profileTable(`${proc === 'node' ? 'node agent' : 'supernode'} (${basename(file)}), the cold fetch only`, s));
          }
        }
        Object.assign(result, { profiled, profileDir, profiles: summaries });
        lines.push(`profiles: ${profileDir}`);
      }
      await mkdir(RESULTS_DIR, { recursive: true });
      const file = join(RESULTS_DIR, `bench-cpu-${String(result.date).replace(/[:.]/g, '-')}.json`);
      await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
      lines.push(`results: ${file}`, '');
      process.stdout.write(lines.join('\n'));
    } finally {
      await registry.stop();
    }
  } finally {
    if (args.keep) log(`kept ${work}`);
    else await removeTempDir(work);
  }
}

if (args.summarise !== undefined) {
  const lines: string[] = [];
  for (const proc of ['supernode', 'node']) {
    for (const file of await profilesIn(join(args.summarise, proc))) lines.push(...profileTable(`${proc === 'node' ? 'node agent' : 'supernode'} (${basename(file)})`, summariseProfile(JSON.parse(await readFile(file, 'utf8')))));
  }
  process.stdout.write(lines.join('\n'));
} else {
  await main();
}
