/**
 * `npm run simulate -- [--nodes N] [--size-mib S] [--rate-mbit B] [--window W] [--seed X] [--no-frontier]`
 *
 * The swarm simulator (issue 3, item 7): N simulated nodes pull one S-byte blob
 * at the same moment through the supernode's real Scheduler, every link at rate
 * B; see sim/swarm.ts for the model. Prints a markdown table and writes
 * load-tests/results/simulate-<N>.json, its name tagged with every option
 * that differs from the defaults (e.g. simulate-1000-no-frontier.json). A run
 * with default options but --nodes (and --no-frontier) redraws
 * docs/img/simulate-cdf.svg from the default 1,000- and 10,000-node results
 * present, plus the 1,000-node one without the frontier for comparison.
 *
 * Defaults: 1,000 nodes, 256 MiB, 200 Mbit/s, window 8, seed 1, the
 * supernode's frontier long-poll on (as the services run). More knobs:
 * --urgent K (next pieces in order a peer marks urgent, 8 as the engine),
 * --rtt-ms (1), --poll-ms (a peer's first idle nap, 20), --no-frontier (no
 * long-poll for pieces still on their way to the seed, no hold-back),
 * --frontier-ahead K and --frontier-ttl-ms (experiments on the long-poll, not
 * what the supernode does: see SimParams), --max-uploads, --max-seed-uploads,
 * --candidates (SchedulerInit; the scheduler's defaults otherwise), --trace F
 * (print the swarm's state every F × S/B).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cdfSvg, type CdfSeries } from './sim/svg.js';
import { simulate, type SimResult } from './sim/swarm.js';

const MiB = 1024 * 1024;
const RESULTS_URL = new URL('../results/', import.meta.url);
const RESULTS_DIR = fileURLToPath(RESULTS_URL);
const SVG_URL = new URL('../../docs/img/simulate-cdf.svg', import.meta.url);

const OPTIONS = {
    nodes: { type: 'string', default: '1000' },
    'size-mib': { type: 'string', default: '256' },
    'rate-mbit': { type: 'string', default: '200' },
    window: { type: 'string', default: '8' },
    seed: { type: 'string', default: '1' },
    urgent: { type: 'string', default: '8' },
    frontier: { type: 'boolean', default: true },
    'rtt-ms': { type: 'string', default: '1' },
    'poll-ms': { type: 'string', default: '20' },
    'frontier-ahead': { type: 'string' },
    'frontier-ttl-ms': { type: 'string' },
    'max-uploads': { type: 'string' },
    'peer-max-uploads': { type: 'string' },
    'max-seed-uploads': { type: 'string' },
    candidates: { type: 'string' },
    trace: { type: 'string', default: '0' },
    help: { type: 'boolean', short: 'h', default: false },
} as const;
const { values: args } = parseArgs({ options: OPTIONS, allowNegative: true });
if (args.help) {
  console.log(`usage: node load-tests/dist/simulate.js [options]
  --nodes N            simulated nodes (1000)
  --size-mib S         blob size, MiB (256)
  --rate-mbit B        every link's rate, Mbit/s (200)
  --window W           pieces a peer keeps in flight (8)
  --seed X             random seed (1)
  --urgent K           next missing pieces a peer marks urgent (8)
  --rtt-ms MS          a request's round trip before bytes flow (1)
  --poll-ms MS         a peer's first idle nap (20)
  --no-frontier        without the supernode's long-poll and hold-back (on by default)
  --frontier-ahead K   experiment: claim only pieces < K past the seed's fill front (any)
  --frontier-ttl-ms MS experiment: frontier claims' lifetime (15000, the supernode's)
  --max-uploads N      SchedulerInit.maxUploadsPerPeer (scheduler default)
  --peer-max-uploads N pieces a peer serves at once before refusing (16, as shoal node)
  --max-seed-uploads N SchedulerInit.maxSeedUploads (scheduler default)
  --candidates N       SchedulerInit.candidatesPerPiece (scheduler default)
  --trace F            print the swarm's state every F × S/B (0: never)`);
  process.exit(0);
}

function num(name: string, value: string | undefined): number {
  const n = Number(value);
  if (value === undefined || !Number.isFinite(n) || n < 0) throw new Error(`--${name}: expected a non-negative number, got ${value}`);
  return n;
}
const optional = (name: string, value: string | undefined): number | undefined => (value === undefined ? undefined : num(name, value));

const quantile = (sorted: Float64Array, q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;

interface Summary {
  nodes: number;
  sizeMiB: number;
  rateMbit: number;
  window: number;
  seed: number;
  pieceCount: number;
  pieceSizeBytes: number;
  lineRateSeconds: number;
  p50: number;
  p90: number;
  max: number;
  registryEgressXS: number;
  seedEgressXS: number;
  events: number;
  scheduleCalls: number;
  /** Schedule calls per piece fetched (N × pieceCount pieces). */
  scheduleCallsPerPiece: number;
  busyRefusals: number;
  longPollTimeouts: number;
  ignoredAssignments: number;
  frontier: boolean;
  maxSeedConcurrent: number;
  /** Seed egress to frontier claimers, ×S (the rest of seedEgressXS went to children the scheduler sent to the seed). */
  seedFrontierEgressXS: number;
  seedDuplicatedPieces: number;
  seedExtraCopies: number;
  frontierClaims: number;
  heldBack: number;
  releasedByAnnounce: number;
  releasedByTimer: number;
  partialNaps: number;
  /** CPU seconds inside the Scheduler per simulated second: above 1, one supernode could not keep up. */
  schedulerLoad: number;
  /** Mean time of one scheduler call (schedule, peerHas, reportFailure), µs. */
  schedulerCallUs: number;
  wallSeconds: number;
  /** Completion / (S/B) at every 0.5 % of nodes (201 points), for plots. */
  cdf: number[];
}

function summarize(r: SimResult): Summary {
  const ratio = (ms: number): number => ms / r.lineRateMs;
  const S = r.params.sizeBytes;
  return {
    nodes: r.params.nodes,
    sizeMiB: S / MiB,
    rateMbit: r.params.rateBitsPerSec / 1e6,
    window: r.params.window,
    seed: r.params.seed,
    pieceCount: r.pieceCount,
    pieceSizeBytes: r.pieceSizeBytes,
    lineRateSeconds: r.lineRateMs / 1000,
    p50: ratio(quantile(r.completionMs, 0.5)),
    p90: ratio(quantile(r.completionMs, 0.9)),
    max: ratio(r.completionMs[r.completionMs.length - 1] as number),
    registryEgressXS: r.registryEgressBytes / S,
    seedEgressXS: r.seedEgressBytes / S,
    events: r.events,
    scheduleCalls: r.scheduleCalls,
    scheduleCallsPerPiece: r.scheduleCalls / (r.params.nodes * r.pieceCount),
    busyRefusals: r.busyRefusals,
    longPollTimeouts: r.longPollTimeouts,
    ignoredAssignments: r.ignoredAssignments,
    frontier: r.params.frontier ?? true,
    maxSeedConcurrent: r.maxSeedConcurrent,
    seedFrontierEgressXS: r.seedFrontierEgressBytes / S,
    seedDuplicatedPieces: r.seedDuplicatedPieces,
    seedExtraCopies: r.seedExtraCopies,
    frontierClaims: r.frontierClaims,
    heldBack: r.heldBack,
    releasedByAnnounce: r.releasedByAnnounce,
    releasedByTimer: r.releasedByTimer,
    partialNaps: r.partialNaps,
    schedulerLoad: r.schedulerMs / (r.completionMs[r.completionMs.length - 1] as number),
    schedulerCallUs: (r.schedulerMs * 1000) / (r.scheduleCalls + r.peerEgressBytes / r.pieceSizeBytes + r.seedEgressBytes / r.pieceSizeBytes + r.busyRefusals),
    wallSeconds: r.wallMs / 1000,
    cdf: Array.from({ length: 201 }, (_, i) => ratio(i === 0 ? (r.completionMs[0] as number) : quantile(r.completionMs, i / 200))),
  };
}

const params = {
  nodes: num('nodes', args.nodes),
  sizeBytes: Math.round(num('size-mib', args['size-mib']) * MiB),
  rateBitsPerSec: num('rate-mbit', args['rate-mbit']) * 1e6,
  window: num('window', args.window),
  urgent: num('urgent', args.urgent),
  rttMs: num('rtt-ms', args['rtt-ms']),
  pollMs: num('poll-ms', args['poll-ms']),
  seed: num('seed', args.seed),
  traceEvery: num('trace', args.trace),
  frontier: args.frontier,
  ...(args['peer-max-uploads'] === undefined ? {} : { peerMaxUploads: num('peer-max-uploads', args['peer-max-uploads']) }),
  ...(args['frontier-ahead'] === undefined ? {} : { frontierAhead: num('frontier-ahead', args['frontier-ahead']) }),
  ...(args['frontier-ttl-ms'] === undefined ? {} : { frontierTtlMs: num('frontier-ttl-ms', args['frontier-ttl-ms']) }),
  scheduler: {
    ...(args['max-uploads'] === undefined ? {} : { maxUploadsPerPeer: optional('max-uploads', args['max-uploads']) }),
    ...(args['max-seed-uploads'] === undefined ? {} : { maxSeedUploads: optional('max-seed-uploads', args['max-seed-uploads']) }),
    ...(args.candidates === undefined ? {} : { candidatesPerPiece: optional('candidates', args.candidates) }),
  },
};
if (params.nodes < 1 || params.window < 1 || params.sizeBytes < 1 || params.rateBitsPerSec <= 0) throw new Error('nodes, window, size and rate must be positive');

const result = simulate(params);
if (result.registryEgressBytes !== params.sizeBytes) {
  throw new Error(`registry egress ${result.registryEgressBytes} B is not the blob size ${params.sizeBytes} B`);
}
const s = summarize(result);

const f2 = (x: number): string => x.toFixed(2);
console.log(
  `\nSwarm simulation: ${s.nodes} nodes, ${s.sizeMiB} MiB (${s.pieceCount} × ${s.pieceSizeBytes / MiB} MiB pieces), ${s.rateMbit} Mbit/s links, window ${s.window}, ` +
    `${s.frontier ? 'supernode long-poll (frontier) on' : 'frontier off'}; S/B = ${s.lineRateSeconds.toFixed(2)} s; ${s.ignoredAssignments} assignments ignored by peers\n`,
);
console.log('| nodes | frontier | p50 ×S/B | p90 ×S/B | max ×S/B | registry egress ×S | seed egress ×S | events | schedule calls | calls/piece | busy refusals | scheduler µs/call | scheduler load | wall s |');
console.log('| ---: | :---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
console.log(
  `| ${s.nodes} | ${s.frontier ? 'on' : 'off'} | ${f2(s.p50)} | ${f2(s.p90)} | ${f2(s.max)} | ${f2(s.registryEgressXS)} | ${f2(s.seedEgressXS)} | ${s.events} | ${s.scheduleCalls} | ${f2(s.scheduleCallsPerPiece)} | ` +
    `${s.busyRefusals} | ${s.schedulerCallUs.toFixed(1)} | ${f2(s.schedulerLoad)} | ${s.wallSeconds.toFixed(1)} |`,
);
console.log(
  `\nseed: ${f2(s.seedFrontierEgressXS)} × S to frontier claimers, ${f2(s.seedEgressXS - s.seedFrontierEgressXS)} × S to scheduled children; ` +
    `${s.seedDuplicatedPieces} pieces sent more than once (${s.seedExtraCopies} extra copies); at most ${s.maxSeedConcurrent} uploads at once`,
);
if (s.frontier) {
  console.log(`frontier: ${s.frontierClaims} claims; ${s.heldBack} pieces held back at the seed, released by the claimer's announcement ${s.releasedByAnnounce}, by the 2 s timer ${s.releasedByTimer}; ${s.longPollTimeouts} long-polls timed out`);
}
console.log(`engine: ${s.partialNaps} naps after an answer that did not fill the window`);

// Options that change the model, other than --nodes and --frontier, tag the results' file name.
const tags: string[] = [];
for (const [name, option] of Object.entries(OPTIONS)) {
  if (name === 'nodes' || name === 'frontier' || name === 'trace' || name === 'help') continue;
  const value = (args as Record<string, string | boolean | undefined>)[name];
  if (value !== undefined && value !== ('default' in option ? option.default : undefined)) tags.push(`${name}-${String(value)}`);
}
const standard = tags.length === 0;
const resultName = (nodes: number, frontier: boolean): string => `simulate-${nodes}${frontier ? '' : '-no-frontier'}${tags.map((t) => `-${t}`).join('')}.json`;
await mkdir(RESULTS_DIR, { recursive: true });
await writeFile(new URL(resultName(s.nodes, s.frontier), RESULTS_URL), `${JSON.stringify(s, null, 2)}\n`);
console.log(`\nwrote ${fileURLToPath(new URL(resultName(s.nodes, s.frontier), RESULTS_URL))}`);

// Redraw the CDF plot from the default 1,000- and 10,000-node results present
// (and the 1,000-node one without the frontier).
const series: CdfSeries[] = [];
for (const [n, frontier] of standard ? [
  [1000, true],
  [10000, true],
  [1000, false],
] as const : []) {
  let other: Summary;
  try {
    other = JSON.parse(await readFile(new URL(resultName(n, frontier), RESULTS_URL), 'utf8')) as Summary;
  } catch {
    continue; // not run yet
  }
  if (other.sizeMiB !== s.sizeMiB || other.rateMbit !== s.rateMbit || other.window !== s.window || other.frontier !== frontier) continue;
  series.push({
    label: `${n.toLocaleString('en-US')} nodes${frontier ? '' : ', frontier off'}: p50 ${f2(other.p50)}, max ${f2(other.max)}; seed egress ${f2(other.seedEgressXS)} × S`,
    ratios: other.cdf,
  });
}
if (series.length > 0) {
  await mkdir(new URL('.', SVG_URL), { recursive: true });
  await writeFile(SVG_URL, cdfSvg(series, `Simulated swarm: ${s.sizeMiB} MiB blob, ${s.rateMbit} Mbit/s links — completion-time CDF`));
  console.log(`wrote ${fileURLToPath(SVG_URL)}`);
}
