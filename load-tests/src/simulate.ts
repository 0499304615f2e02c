/**
 * `npm run simulate -- [options]` — the swarm simulator (sim/simulation.ts): N nodes pull the
 * bench's image (or one blob) at the same moment through the supernode's real Scheduler,
 * with per-host link rates in both directions, the supernode's own back-to-source, and the
 * services' timers and limits (sim/constants.ts).
 *
 * `npm run simulate -- --validate` holds the model to the real thing: it runs bench:swarm
 * (as root: network namespaces, real containerd, real services) at N = 4 and 16, 25 and
 * 100 Mbit/s — or reads results already made with `--harness FILE[,FILE...]` — simulates
 * the same points, and prints the two side by side. The model is trusted where p50 and
 * registry egress agree within 15 %; only then are large-N figures worth quoting.
 *
 * Run with --help for the flags.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_CHAIN_MEMBERS, MAX_CHAIN_MEMBERS } from '@shoal/supernode';
import { modelConstants } from './sim/constants.js';
import { cdfSvg, type CdfSeries } from './sim/svg.js';
import { simulate, TCP_GOODPUT, tcpGoodput, type SimParams, type SimResult } from './sim/simulation.js';
import { layerSizes } from './lib/image-shape.js';

const MiB = 1024 * 1024;
const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));
const SVG_PATH = fileURLToPath(new URL('../../docs/img/simulate-cdf.svg', import.meta.url));
const BENCH_SWARM = fileURLToPath(new URL('./bench-swarm.js', import.meta.url));
/** Where the model must agree with the harness. */
const TOLERANCE = 0.15;
const VALIDATION_NODES = [4, 16];
const VALIDATION_RATES = [25, 100];
const VALIDATION_SIZE_MIB = 64;

const USAGE = `usage: npm run simulate -- [options]
  --nodes N[,N...]        simulated nodes; a list runs each (1000)
  --size-mib S            image size, MiB (256)
  --one-blob              one blob of S instead of bench:swarm's 5-layer image
  --layers K              the image in K layers of equal size (bench:swarm --layers)
  --rate-mbit B           every link's rate, Mbit/s (200)
  --node-up-mbit X, --node-down-mbit X, --seed-up-mbit X, --seed-down-mbit X, --registry-up-mbit X
                          one kind of link at another rate (B)
  --rtt-ms MS             a request's round trip before bytes flow, on idle links (0.2)
  --goodput F             TCP payload per byte of link capacity (${TCP_GOODPUT.toFixed(4)}: 1448 / 1514)
  --uplink-overhead F     share of each node's and the supernode host's uplink taken by what the
                          model does not carry: ACKs, requests, segments sent again (0; bench:swarm 0.026)
  --socket-buffer-kib K   a sender's kernel buffer per connection: a send's slot frees when K are left (2 × the leaf FIFO)
  --leaf-queue-kib K      each host pair's FIFO at a shaped link, as bench:swarm (40 ms at B, ≥ 256 KiB)
  --layer-concurrency K   layers containerd fetches at once; 0 = all, as ctr pull and bench:swarm (0; CRI: 3)
  --arrival-order O       the order the nodes ask for the layers in: manifest, or shuffled (one random
                          order per run, as the supernode hears of them in bench:swarm) (manifest)
  --node-start-ms MS      when the nodes ask for the layers (bench:swarm's sixteen pulls reach the
                          supernode 0.2–1.1 s after their start, on two cores) (0)
  --manifest-prefetch-ms MS  what if the supernode began every layer's fetch at MS, in the manifest's
                          order, before any node asked (not in the code; off)
  --chain-members N       a blob's swarm of 2 to N nodes is a chain, as the supernode schedules it with
                          --chain-members N (${DEFAULT_CHAIN_MEMBERS}: off, its default)
  --chain-window K        what if each layer's nodes formed an ideal chain (not --chain-members): a ring,
                          each layer's first node another, taking the pieces in order from the supernode,
                          every other node from the one before it, K in flight, each passed on while it
                          arrives, with no schedule calls (off)
  --chain-hop-ms MS       with --chain-window: how long after a piece begins to arrive at a node the next
                          node's request for it can start (0)
  --preheated             the supernode's cache holds the image when the nodes ask (shoal preheat, or an
                          earlier wave; bench:swarm --preheat): times count from the nodes' start
  --seed X                random seed (1)
  --no-frontier           without the supernode's frontier long-poll
  --no-proxy-fallback     without the proxy's first-byte fallback to the registry
  --no-peer-cut-through   what if peers passed on only pieces they have verified (the services
                          pass a piece on while it arrives, as the supernode does)
  --paced-cut-through     a send of a piece still arriving (the supernode's, a peer's relay) moves no
                          faster than the piece arrives where it is sent from, as in the services;
                          without it, its bytes cross at the pair's rate and the send is held open
                          until the piece has arrived (off)
  --trace F               print the swarm's state every F × S/B (0: never)
  --svg                   draw docs/img/simulate-cdf.svg from this run's rows
  --validate              run bench:swarm (root) at N = ${VALIDATION_NODES.join(', ')} × ${VALIDATION_RATES.join(', ')} Mbit/s, ${VALIDATION_SIZE_MIB} MiB, simulate the same, compare
  --harness FILE[,FILE]   with --validate: compare with every point of these bench:swarm results instead of running it
  --runs K                simulate each point with K seeds (from --seed): the table gives their mean, p50 to
                          three decimals, and its range, for telling two variants apart (1; --validate: 8)
  -h, --help              this text
`;

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1000' },
    'size-mib': { type: 'string', default: '256' },
    'one-blob': { type: 'boolean', default: false },
    layers: { type: 'string' },
    'rate-mbit': { type: 'string', default: '200' },
    'node-up-mbit': { type: 'string' },
    'node-down-mbit': { type: 'string' },
    'seed-up-mbit': { type: 'string' },
    'seed-down-mbit': { type: 'string' },
    'registry-up-mbit': { type: 'string' },
    'rtt-ms': { type: 'string', default: '0.2' },
    goodput: { type: 'string' },
    'uplink-overhead': { type: 'string', default: '0' },
    'socket-buffer-kib': { type: 'string' },
    'leaf-queue-kib': { type: 'string' },
    'layer-concurrency': { type: 'string', default: '0' },
    'arrival-order': { type: 'string', default: 'manifest' },
    'node-start-ms': { type: 'string', default: '0' },
    'manifest-prefetch-ms': { type: 'string' },
    'chain-window': { type: 'string' },
    'chain-members': { type: 'string' },
    'chain-hop-ms': { type: 'string' },
    preheated: { type: 'boolean', default: false },
    seed: { type: 'string', default: '1' },
    frontier: { type: 'boolean', default: true },
    'proxy-fallback': { type: 'boolean', default: true },
    'peer-cut-through': { type: 'boolean', default: true },
    'paced-cut-through': { type: 'boolean', default: false },
    trace: { type: 'string', default: '0' },
    svg: { type: 'boolean', default: false },
    validate: { type: 'boolean', default: false },
    harness: { type: 'string' },
    runs: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  allowNegative: true,
});
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

/** A command-line option with a value it cannot take. */
class OptionError extends Error {}

function num(name: string, value: string | undefined): number {
  const n = Number(value);
  if (value === undefined || value === '' || !Number.isFinite(n) || n < 0) throw new OptionError(`--${name}: expected a non-negative number, got ${String(value)}`);
  return n;
}
/** A share of a link: a number in [0, 1). */
function share(name: string, value: string | undefined): number {
  const n = num(name, value);
  if (n >= 1) throw new OptionError(`--${name}: expected a share below 1, got ${String(value)}`);
  return n;
}
function arrivalOrder(): 'manifest' | 'shuffled' {
  const value = args['arrival-order'];
  if (value !== 'manifest' && value !== 'shuffled') throw new OptionError(`--arrival-order: expected manifest or shuffled, got ${JSON.stringify(value)}`);
  return value;
}

/** --chain-members: the scheduler's chain length (the supernode's by default). */
function chainMembersOption(): number {
  if (args['chain-members'] === undefined) return DEFAULT_CHAIN_MEMBERS;
  const members = num('chain-members', args['chain-members']);
  if (!Number.isInteger(members) || members < 0 || members > MAX_CHAIN_MEMBERS) throw new OptionError(`--chain-members: a whole number up to ${MAX_CHAIN_MEMBERS}, got ${members}`);
  return members;
}

/** --chain-window and --chain-hop-ms: the chain what-if, or undefined (the scheduler's swarm). */
function chainOption(): { window: number; hopMs: number } | undefined {
  if (args['chain-window'] === undefined) {
    if (args['chain-hop-ms'] !== undefined) throw new OptionError('--chain-hop-ms is the chain what-if: it needs --chain-window');
    return undefined;
  }
  const window = num('chain-window', args['chain-window']);
  if (!Number.isInteger(window) || window < 1) throw new OptionError(`--chain-window: a positive integer, got ${window}`);
  return { window, hopMs: args['chain-hop-ms'] === undefined ? 0 : num('chain-hop-ms', args['chain-hop-ms']) };
}

/** --preheated starts the nodes once the image is cached: a start time or a prefetch of its own would be ignored. */
function preheated(): boolean {
  if (args.preheated && (args['node-start-ms'] !== '0' || args['manifest-prefetch-ms'] !== undefined)) {
    throw new OptionError('--preheated starts the nodes once the supernode holds the image: it takes neither --node-start-ms nor --manifest-prefetch-ms');
  }
  return args.preheated;
}

const mbit = (name: string): number | undefined => {
  const v = (args as Record<string, string | boolean | undefined>)[name];
  return typeof v === 'string' ? num(name, v) * 1e6 : undefined;
};

const quantile = (sorted: Float64Array, q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;

interface Summary {
  nodes: number;
  sizeMiB: number;
  layers: number;
  rateMbit: number;
  pieceCount: number;
  lineRateSeconds: number;
  p50: number;
  p90: number;
  max: number;
  registryEgressXS: number;
  registryToNodesXS: number;
  fallbacks: number;
  seedEgressXS: number;
  events: number;
  scheduleCalls: number;
  heldReruns: number;
  busyRefusals: number;
  longPollTimeouts: number;
  /** Requests ahead in the chain that ran out at a link ('missing'). */
  aheadMisses: number;
  frontierClaims: number;
  /** CPU seconds inside the Scheduler per simulated second: above 1, one supernode could not keep up. */
  schedulerLoad: number;
  wallSeconds: number;
  /** Completion / (S/B) at every 0.5 % of nodes (201 points), for plots. */
  cdf: number[];
}

function summarize(r: SimResult): Summary {
  const ratio = (ms: number): number => ms / r.lineRateMs;
  const last = r.completionMs[r.completionMs.length - 1] as number;
  return {
    nodes: r.params.nodes,
    sizeMiB: r.sizeBytes / MiB,
    layers: r.params.layerBytes.length,
    rateMbit: r.params.rateBitsPerSec / 1e6,
    pieceCount: r.pieceCount,
    lineRateSeconds: r.lineRateMs / 1000,
    p50: ratio(quantile(r.completionMs, 0.5)),
    p90: ratio(quantile(r.completionMs, 0.9)),
    max: ratio(last),
    registryEgressXS: r.registryEgressBytes / r.sizeBytes,
    registryToNodesXS: r.registryToNodesBytes / r.sizeBytes,
    fallbacks: r.fallbacks,
    seedEgressXS: r.seedEgressBytes / r.sizeBytes,
    events: r.events,
    scheduleCalls: r.scheduleCalls,
    heldReruns: r.heldReruns,
    busyRefusals: r.busyRefusals,
    longPollTimeouts: r.longPollTimeouts,
    aheadMisses: r.aheadMisses,
    frontierClaims: r.frontierClaims,
    schedulerLoad: r.schedulerMs / last,
    wallSeconds: r.wallMs / 1000,
    cdf: Array.from({ length: 201 }, (_, i) => ratio(i === 0 ? (r.completionMs[0] as number) : quantile(r.completionMs, i / 200))),
  };
}

/** `mtu`: the links' (a harness run's), whose TCP framing the model carries unless --goodput says otherwise. */
function paramsFor(nodes: number, layerBytes: number[], rateMbit: number, mtu = 1500): SimParams {
  const links: NonNullable<SimParams['links']> = {};
  const set = (key: keyof typeof links, name: string): void => {
    const v = mbit(name);
    if (v !== undefined) links[key] = v;
  };
  set('nodeUp', 'node-up-mbit');
  set('nodeDown', 'node-down-mbit');
  set('seedUp', 'seed-up-mbit');
  set('seedDown', 'seed-down-mbit');
  set('registryUp', 'registry-up-mbit');
  const chain = chainOption();
  return {
    nodes,
    layerBytes,
    rateBitsPerSec: rateMbit * 1e6,
    links,
    rttMs: num('rtt-ms', args['rtt-ms']),
    goodput: args.goodput === undefined ? tcpGoodput(mtu) : num('goodput', args.goodput),
    uplinkOverhead: share('uplink-overhead', args['uplink-overhead']),
    ...(args['socket-buffer-kib'] === undefined ? {} : { socketBufferBytes: num('socket-buffer-kib', args['socket-buffer-kib']) * 1024 }),
    ...(args['leaf-queue-kib'] === undefined ? {} : { leafQueueBytes: num('leaf-queue-kib', args['leaf-queue-kib']) * 1024 }),
    layerConcurrency: num('layer-concurrency', args['layer-concurrency']),
    arrivalOrder: arrivalOrder(),
    nodeStartMs: num('node-start-ms', args['node-start-ms']),
    ...(args['manifest-prefetch-ms'] === undefined ? {} : { manifestPrefetchMs: num('manifest-prefetch-ms', args['manifest-prefetch-ms']) }),
    preheated: preheated(),
    ...(chain === undefined ? {} : { chain }),
    seed: num('seed', args.seed),
    scheduler: { chainMembers: chainMembersOption() },
    constants: modelConstants(),
    frontier: args.frontier,
    proxyFallback: args['proxy-fallback'],
    peerCutThrough: args['peer-cut-through'],
    pacedCutThrough: args['paced-cut-through'],
    traceEvery: num('trace', args.trace),
  };
}

const f2 = (x: number): string => x.toFixed(2);

/** --runs, or `fallback` when it is not given. */
function runsOption(fallback: number): number {
  const runs = args.runs === undefined ? fallback : num('runs', args.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new OptionError(`--runs: a positive integer, got ${runs}`);
  return runs;
}

/** A point simulated with one seed or more: the seeds' means, and the range of their p50. */
type SeedsSummary = Summary & { p50Min: number; p50Max: number };

/** The seeds' mean of every figure, and the range of their p50; the CDF, for plots, is the first seed's. */
function meanOfRuns(runs: readonly Summary[]): SeedsSummary {
  const mean = (f: (s: Summary) => number): number => runs.reduce((a, s) => a + f(s), 0) / runs.length;
  const p50s = runs.map((s) => s.p50);
  return {
    ...(runs[0] as Summary),
    p50: mean((s) => s.p50),
    p90: mean((s) => s.p90),
    max: mean((s) => s.max),
    registryEgressXS: mean((s) => s.registryEgressXS),
    registryToNodesXS: mean((s) => s.registryToNodesXS),
    fallbacks: runs.reduce((a, s) => a + s.fallbacks, 0),
    seedEgressXS: mean((s) => s.seedEgressXS),
    scheduleCalls: mean((s) => s.scheduleCalls),
    heldReruns: mean((s) => s.heldReruns),
    busyRefusals: runs.reduce((a, s) => a + s.busyRefusals, 0),
    longPollTimeouts: runs.reduce((a, s) => a + s.longPollTimeouts, 0),
    aheadMisses: runs.reduce((a, s) => a + s.aheadMisses, 0),
    schedulerLoad: Math.max(...runs.map((s) => s.schedulerLoad)),
    wallSeconds: runs.reduce((a, s) => a + s.wallSeconds, 0),
    p50Min: Math.min(...p50s),
    p50Max: Math.max(...p50s),
  };
}

/** The table of several seeds per point: means (fallbacks, refusals and timeouts summed; the scheduler's load the worst). */
function simRowsOfRuns(rows: readonly SeedsSummary[], runs: number): string[] {
  const f3 = (x: number): string => x.toFixed(3);
  return [
    `| nodes | p50 × S/B, mean of ${runs} seeds (range) | p90 × S/B | max × S/B | registry egress × S | of which to nodes (fallbacks) | seed egress × S | schedule calls per node (held-call reruns) | busy refusals | long-poll timeouts | scheduler load | wall s |`,
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (s) =>
        `| ${s.nodes} | ${f3(s.p50)} (${f3(s.p50Min)}–${f3(s.p50Max)}) | ${f3(s.p90)} | ${f3(s.max)} | ${f2(s.registryEgressXS)} | ${f2(s.registryToNodesXS)} (${s.fallbacks}) | ${f2(s.seedEgressXS)} | ${(s.scheduleCalls / s.nodes).toFixed(0)} (${(s.heldReruns / s.nodes).toFixed(0)}) | ${s.busyRefusals} | ${s.longPollTimeouts} | ${f2(s.schedulerLoad)} | ${s.wallSeconds.toFixed(1)} |`,
    ),
  ];
}

function simRows(rows: Summary[]): string[] {
  return [
    '| nodes | p50 × S/B | p90 × S/B | max × S/B | registry egress × S | of which to nodes (fallbacks) | seed egress × S | schedule calls per node (held-call reruns) | busy refusals | long-poll timeouts | scheduler load | wall s |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (s) =>
        `| ${s.nodes} | ${f2(s.p50)} | ${f2(s.p90)} | ${f2(s.max)} | ${f2(s.registryEgressXS)} | ${f2(s.registryToNodesXS)} (${s.fallbacks}) | ${f2(s.seedEgressXS)} | ${(s.scheduleCalls / s.nodes).toFixed(0)} (${(s.heldReruns / s.nodes).toFixed(0)}) | ${s.busyRefusals} | ${s.longPollTimeouts} | ${f2(s.schedulerLoad)} | ${s.wallSeconds.toFixed(1)} |`,
    ),
  ];
}

async function runSimulations(): Promise<void> {
  const nodesList = (args.nodes ?? '').split(',').filter((x) => x !== '').map((x) => num('nodes', x));
  const sizeBytes = Math.round(num('size-mib', args['size-mib']) * MiB);
  const layers = args['one-blob'] ? [sizeBytes] : layerSizes(sizeBytes, args.layers === undefined ? undefined : num('layers', args.layers));
  const rate = num('rate-mbit', args['rate-mbit']);
  const runs = runsOption(1);
  const rows: SeedsSummary[] = [];
  for (const n of nodesList) {
    if (!Number.isInteger(n) || n < 1) throw new OptionError(`--nodes: positive integers, got ${n}`);
    const params = paramsFor(n, layers, rate);
    rows.push(meanOfRuns(Array.from({ length: runs }, (_, i) => summarize(simulate({ ...params, seed: params.seed + i })))));
  }
  const first = rows[0] as Summary;
  const k = modelConstants();
  console.log(
    `\nSimulated swarm: ${first.sizeMiB} MiB in ${first.layers} layer(s) (${first.pieceCount} pieces), ${first.rateMbit} Mbit/s links, S/B = ${first.lineRateSeconds.toFixed(2)} s; ` +
      `frontier ${args.frontier ? 'on' : 'off'}, proxy first-byte fallback ${args['proxy-fallback'] ? `on (${k.firstByteTimeoutMs} ms)` : 'off'}` +
      `${args['peer-cut-through'] ? '' : ', peer cut-through off (the services have it)'}` +
      `${args['paced-cut-through'] ? ', cut-through sends paced by their piece\'s arrival' : ''}` +
      `, layers asked in ${arrivalOrder() === 'manifest' ? "the manifest's order" : 'a shuffled order'}` +
      `${args.preheated ? "; the supernode's cache preheated (times from the nodes' start; the registry egress is the preheat's)" : ''}\n`,
  );
  console.log((runs === 1 ? simRows(rows) : simRowsOfRuns(rows, runs)).join('\n'));
  for (const r of rows) {
    if (r.schedulerLoad >= 1) {
      console.log(
        `\n${r.nodes} nodes: the Scheduler alone needed ${f2(r.schedulerLoad)} CPU-seconds per simulated second (held schedule calls rerun on every change). ` +
          'The model answers schedule calls instantly; one supernode could not, so these times are a bound, not a prediction.',
      );
    }
  }
  await mkdir(RESULTS_DIR, { recursive: true });
  const file = `${RESULTS_DIR}simulate-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  await writeFile(file, `${JSON.stringify({ constants: k, args, rows }, null, 2)}\n`);
  console.log(`\nwrote ${file}`);
  if (args.svg) {
    const ofSeeds = runs === 1 ? '' : ` (mean of ${runs} seeds; the curve is the first's)`;
    const series: CdfSeries[] = rows.map((s) => ({ label: `${s.nodes.toLocaleString('en-US')} nodes: p50 ${f2(s.p50)}, max ${f2(s.max)}; registry ${f2(s.registryEgressXS)} × S${ofSeeds}`, ratios: s.cdf }));
    await writeFile(SVG_PATH, cdfSvg(series, `Simulated swarm: ${first.sizeMiB} MiB image, ${first.rateMbit} Mbit/s links — completion-time CDF`));
    console.log(`wrote ${SVG_PATH}`);
  }
}

// --- validation against bench:swarm -------------------------------------------------------

interface HarnessPoint {
  nodes: number;
  rateMbit: number;
  layers: number[];
  /** Layers each ctr fetched at once (0: all); absent in older results, which fetched all. */
  layerConcurrency: number;
  /** The links' MTU (absent in older results: 1500); the model carries its TCP framing. */
  mtu: number;
  fetchP50: number | null;
  p50: number | null;
  max: number | null;
  registryOfS: number;
  supernodeHostOfS: number | null;
  cpuBusy: number;
  /** Share of CPU samples with every core busy: the CPU, not the links, set the pace. */
  cpuSaturated: number | null;
  source: string;
}

/** A harness point with more than this share of saturated CPU samples was CPU-bound: the simulator has no CPU, so it is shown, not judged. */
const CPU_BOUND_SATURATED = 0.5;

interface HarnessJson {
  nodes: number;
  layers: number[];
  maxConcurrentDownloads?: number;
  mtu?: number;
  runs?: Array<{
    rateMbit: number;
    summary: Array<{ mode: string; fetchP50: number | null; p50: number | null; max: number | null; registryOfS: number; supernodeHostOfS?: number }>;
    modes: Array<{ mode: string; cpu: { meanBusy: number; saturatedShare?: number } }>;
  }>;
}

async function harnessPoints(files: readonly string[]): Promise<HarnessPoint[]> {
  const out: HarnessPoint[] = [];
  for (const file of files) {
    const j = JSON.parse(await readFile(file, 'utf8')) as HarnessJson;
    if (!Array.isArray(j.runs)) throw new Error(`${file}: not a bench:swarm result with runs (an older format?)`);
    // Every Shoal pull is a point (a run with --pulls has several per rate); summary and modes are parallel.
    for (const run of j.runs) {
      for (const [i, s] of run.summary.entries()) {
        const m = run.modes[i];
        if (s.mode !== 'shoal' || m === undefined) continue;
        out.push({
          nodes: j.nodes,
          rateMbit: run.rateMbit,
          layers: j.layers,
          layerConcurrency: j.maxConcurrentDownloads ?? 0,
          mtu: j.mtu ?? 1500,
          fetchP50: s.fetchP50,
          p50: s.p50,
          max: s.max,
          registryOfS: s.registryOfS,
          supernodeHostOfS: s.supernodeHostOfS ?? null,
          cpuBusy: m.cpu.meanBusy,
          cpuSaturated: m.cpu.saturatedShare ?? null,
          source: file,
        });
      }
    }
  }
  return out;
}

/** Runs bench:swarm (Shoal mode) and returns the results file it wrote. */
function runHarness(nodes: number, rates: readonly number[]): Promise<string> {
  const argv = [BENCH_SWARM, '--nodes', String(nodes), '--size-mib', String(VALIDATION_SIZE_MIB), '--rate-mbit', rates.join(','), '--modes', 'shoal', '--svg', '', '--sweep-svg', '', '--label', `simulate --validate N=${nodes}`];
  console.error(`[simulate] running: node ${argv.join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
    });
    child.once('error', reject);
    child.once('close', (code) => {
      const file = /^results: (\S+\.json)/m.exec(stdout)?.[1];
      if (file === undefined) reject(new Error(`bench:swarm exited ${String(code)} without results:\n${stdout.slice(-2000)}`));
      else resolve(file);
    });
  });
}

async function validate(): Promise<void> {
  if (!args['peer-cut-through']) throw new OptionError('--no-peer-cut-through is a what-if the services do not do: the harness cannot validate it');
  const files = args.harness !== undefined ? args.harness.split(',').filter((f) => f !== '') : [];
  if (files.length === 0) {
    if (process.getuid?.() !== 0) throw new OptionError('--validate runs bench:swarm, which needs root; or pass --harness FILE');
    for (const n of VALIDATION_NODES) files.push(await runHarness(n, VALIDATION_RATES));
  }
  const points = await harnessPoints(files);
  // With harness files: every point they hold. Run here: the validation grid.
  // Each harness point is its own row (two runs of one N and rate are two rows).
  const wanted: Array<readonly [number, number, HarnessPoint | undefined]> =
    files.length > 0 && args.harness !== undefined
      ? points.map((p) => [p.nodes, p.rateMbit, p] as const)
      : VALIDATION_NODES.flatMap((n) => VALIDATION_RATES.map((r) => [n, r, points.find((p) => p.nodes === n && p.rateMbit === r)] as const));
  const runCount = runsOption(8);
  const lines = [
    '',
    `Simulator against bench:swarm (Shoal mode; the sim's completion is the harness's fetch time: containerd's unpack is not modelled; its links carry each run's TCP framing, from the run's MTU). Agreement: within ${TOLERANCE * 100} %, judged where the harness was not CPU-bound (at most ${CPU_BOUND_SATURATED * 100} % of CPU samples saturated).`,
    '',
    `| N | MiB | rate Mbit/s | harness fetch p50 × S/B | sim p50, mean (range) of ${runCount} seeds | diff | harness registry × S | sim registry × S | diff | harness supernode host × S | sim seed egress × S | harness p50 (with unpack) / max | sim max | CPU busy / saturated | agrees |`,
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  let agreeAll = true;
  const rows: Array<Record<string, unknown>> = [];
  for (const [n, rate, h] of wanted) {
    if (h === undefined) {
      lines.push(`| ${n} | | ${rate} | no harness result | | | | | | | | | | | no |`);
      agreeAll = false;
      continue;
    }
    // The swarm's schedule is chaotic: a different random seed moves one run's p50 by
    // ±10 % at N=16. The model's answer is the mean over `--runs` seeds, with its range.
    const runs = Array.from({ length: runCount }, (_, i) => summarize(simulate({ ...paramsFor(n, h.layers, rate, h.mtu), layerConcurrency: h.layerConcurrency, seed: num('seed', args.seed) + i })));
    const s = meanOfRuns(runs);
    const p50s = runs.map((x) => x.p50);
    const rel = (sim: number, real: number | null): number => (real === null || real === 0 ? Number.POSITIVE_INFINITY : (sim - real) / real);
    const dP50 = rel(s.p50, h.fetchP50);
    const dReg = rel(s.registryEgressXS, h.registryOfS);
    const cpuBound = h.cpuSaturated !== null && h.cpuSaturated > CPU_BOUND_SATURATED;
    const agrees = Math.abs(dP50) <= TOLERANCE && Math.abs(dReg) <= TOLERANCE;
    if (!cpuBound) agreeAll &&= agrees;
    const pct = (x: number): string => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${(x * 100).toFixed(0)} %` : '—');
    const fx = (x: number | null): string => (x === null ? '—' : f2(x));
    const sizeMiB = h.layers.reduce((a, b) => a + b, 0) / MiB;
    const cpu = `${(h.cpuBusy * 100).toFixed(0)} % / ${h.cpuSaturated === null ? '—' : `${(h.cpuSaturated * 100).toFixed(0)} %`}`;
    const verdict = cpuBound ? `CPU-bound: not judged (${agrees ? 'within' : 'outside'} ${TOLERANCE * 100} %)` : agrees ? 'yes' : '**no**';
    lines.push(
      `| ${n} | ${sizeMiB.toFixed(0)} | ${rate}${h.mtu === 1500 ? '' : ` (MTU ${h.mtu})`} | ${fx(h.fetchP50)} | ${f2(s.p50)} (${f2(s.p50Min)}–${f2(s.p50Max)}) | ${pct(dP50)} | ${f2(h.registryOfS)} | ${f2(s.registryEgressXS)} | ${pct(dReg)} | ${fx(h.supernodeHostOfS)} | ${f2(s.seedEgressXS)} | ${fx(h.p50)} / ${fx(h.max)} | ${f2(s.max)} | ${cpu} | ${verdict} |`,
    );
    rows.push({ nodes: n, rateMbit: rate, cpuBound, agrees, harness: h, sim: { ...s, cdf: undefined, p50s } });
  }
  lines.push(
    '',
    agreeAll
      ? 'The model agrees at every link-bound validation point: its large-N figures may be quoted (npm run simulate -- --nodes 1000,10000 --size-mib 64 --rate-mbit 25), where its scheduler load stays below 1.'
      : 'The model does NOT agree at every link-bound point: do not quote its large-N figures until it does (see docs/benchmarks.md for what it leaves out).',
    `harness results: ${files.join(', ')}`,
    '',
  );
  await mkdir(RESULTS_DIR, { recursive: true });
  const file = `${RESULTS_DIR}simulate-validate-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  await writeFile(file, `${JSON.stringify({ tolerance: TOLERANCE, agreeAll, constants: modelConstants(), rows }, null, 2)}\n`);
  lines.push(`wrote ${file}`, '');
  process.stdout.write(lines.join('\n'));
  if (!agreeAll) process.exitCode = 1;
}

try {
  if (args.validate) await validate();
  else await runSimulations();
} catch (err) {
  // A bad option is the user's to fix: its message, not a stack.
  if (!(err instanceof OptionError)) throw err;
  process.stderr.write(`simulate: ${err.message}\n`);
  process.exitCode = 2;
}
