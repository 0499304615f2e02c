/**
 * `npm run swarm-timeline -- <bench-swarm results .json>` — how the
 * nodes' links were used through a Shoal pull, second by second, from the
 * service logs a `bench:swarm` run keeps (run it with SHOAL_BENCH_LOG_LEVEL=trace).
 * See lib/swarm-timeline.ts for what each column means and why.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { medianShortfallBytes, parseNodeLog, pieceSpread, swarmTimeline, type NodeLog } from './lib/swarm-timeline.js';

const USAGE = `usage: npm run swarm-timeline -- [options] <results/bench-swarm-….json>
  Reads the Shoal mode's node logs beside the results file (the run must have had
  SHOAL_BENCH_LOG_LEVEL=trace) and prints, per bin, the nodes' mean receive rate as a
  share of the registry's mean send rate, the nodes' sends to each other on the same
  scale, and what the median node held; then how fast the pieces the supernode sent
  spread to every node, and what the median node lacked at the registry's last byte.
  --rate-mbit R    which rate of a sweep (the first by default)
  --pull K         which of the Shoal mode's pulls, for a run with --pulls (the first by default)
  --bin-s S        bin width in seconds (1)
  --spread-s S     window of the spread table, by when the supernode began a piece (6)
  -h, --help       this text
`;

interface ShoalMode {
  mode: string;
  barrierAtUnixMs: number;
  /** Barrier to the last ctr exit: the end of this pull's part of the logs. */
  pullWallSeconds?: number;
  registryBlobWindow?: { firstGetS: number; lastByteS: number };
  nodes: { fetchSeconds?: number }[];
}
interface Results {
  imageBytes: number;
  runs: { rateMbit: number; lineRateSeconds: number; modes: ShoalMode[] }[];
}

const MIB = 1024 * 1024;
/** The start of the registry's sending reported on its own (the swarm's ramp-up). Seconds. */
const START_SPAN_S = 5;

/** The fields this reads from a results file, checked: a file from another version says so instead of printing NaN. */
function checkResults(value: unknown, file: string): Results {
  const r = value as Partial<Results> | null;
  const ok =
    r !== null &&
    typeof r === 'object' &&
    typeof r.imageBytes === 'number' &&
    r.imageBytes > 0 &&
    Array.isArray(r.runs) &&
    r.runs.every((run) => typeof run.rateMbit === 'number' && typeof run.lineRateSeconds === 'number' && Array.isArray(run.modes) && run.modes.every((m) => typeof m.mode === 'string' && typeof m.barrierAtUnixMs === 'number' && Array.isArray(m.nodes)));
  if (!ok) throw new Error(`${file} is not a bench-swarm results file this script can read (imageBytes, runs[].rateMbit, lineRateSeconds, modes[].mode, barrierAtUnixMs, nodes)`);
  return r as Results;
}

async function main(): Promise<void> {
  const { values: args, positionals } = parseArgs({
    allowPositionals: true,
    options: { 'rate-mbit': { type: 'string' }, pull: { type: 'string', default: '1' }, 'bin-s': { type: 'string', default: '1' }, 'spread-s': { type: 'string', default: '6' }, help: { type: 'boolean', short: 'h', default: false } },
  });
  if (args.help) {
    process.stdout.write(USAGE);
    return;
  }
  const file = positionals[0];
  if (file === undefined || !file.endsWith('.json')) throw new Error(`name a bench-swarm results file (.json)\n${USAGE}`);
  const binS = Number(args['bin-s']);
  if (!(binS > 0 && binS <= 60)) throw new Error(`--bin-s must be in (0, 60], got ${String(args['bin-s'])}`);
  const spreadS = Number(args['spread-s']);
  if (!(spreadS > 0 && spreadS <= 600)) throw new Error(`--spread-s must be in (0, 600], got ${String(args['spread-s'])}`);
  const results = checkResults(JSON.parse(await readFile(file, 'utf8')), file);
  const run = args['rate-mbit'] === undefined ? results.runs[0] : results.runs.find((r) => r.rateMbit === Number(args['rate-mbit']));
  if (run === undefined) throw new Error(`no run at ${String(args['rate-mbit'])} Mbit/s in ${file}`);
  const pull = Number(args.pull);
  if (!Number.isInteger(pull) || pull < 1) throw new Error(`--pull must be a whole number from 1, got ${String(args.pull)}`);
  const pulls = run.modes.filter((m) => m.mode === 'shoal');
  const shoal = pulls[pull - 1];
  if (shoal === undefined) throw new Error(pulls.length === 0 ? `no shoal mode in ${file}` : `${file} has ${pulls.length} Shoal pull(s) at this rate, not ${pull}`);
  const window = shoal.registryBlobWindow;
  if (window === undefined) throw new Error('the registry answered no blob GET in this run');

  // Where bench-swarm copies each mode's service logs: <results>-logs/<rate>mbit/<mode>/.
  const logDir = join(`${file.slice(0, -'.json'.length)}-logs`, `${run.rateMbit}mbit`, 'shoal');
  const names = (await readdir(logDir)).filter((f) => /^n\d+-node-.*\.stdout\.log$/.test(f)).sort();
  // The logs hold every pull of the mode: this one's pieces end with its last ctr.
  const untilUnixMs = shoal.pullWallSeconds === undefined ? Number.POSITIVE_INFINITY : shoal.barrierAtUnixMs + shoal.pullWallSeconds * 1000;
  const nodes: NodeLog[] = await Promise.all(names.map(async (f) => parseNodeLog(f.split('-')[0] ?? f, await readFile(join(logDir, f), 'utf8'), shoal.barrierAtUnixMs, untilUnixMs)));
  const registryBytesPerS = results.imageBytes / (window.lastByteS - window.firstGetS);
  const bins = swarmTimeline(nodes, { binS, referenceBytesPerS: registryBytesPerS });

  const pct = (x: number): string => `${Math.round(x * 100)} %`;
  const lines = [
    `${nodes.length} nodes, S = ${(results.imageBytes / MIB).toFixed(1)} MiB at ${run.rateMbit} Mbit/s (S/B ${run.lineRateSeconds.toFixed(2)} s); the registry sent blobs from +${window.firstGetS.toFixed(2)} s to +${window.lastByteS.toFixed(2)} s, ${(registryBytesPerS / MIB).toFixed(2)} MiB/s on average.`,
    '',
    '| s | nodes receive (× the registry\'s rate) | from relays | from the supernode | nodes send | uplinks under half | median node holds | held by some node |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const b of bins) {
    lines.push(`| ${b.fromS.toFixed(1)}–${b.toS.toFixed(1)} | ${pct(b.downlinkShare)} | ${pct(b.relayShare)} | ${pct(b.seedShare)} | ${pct(b.uplinkShare)} | ${b.uplinksUnderHalf} | ${(b.medianHeldBytes / MIB).toFixed(1)} MiB | ${(b.heldAnywhereBytes / MIB).toFixed(1)} MiB |`);
  }
  // Downlink time the mean node did not use while the registry was sending: it cannot be made up before the
  // registry's last byte, so the tail after that byte is about this long (at the registry's rate).
  const unusedS = (fromS: number, toS: number): number =>
    bins.reduce((sum, b) => {
      const overlap = Math.min(b.toS, toS) - Math.max(b.fromS, fromS);
      return overlap > 0 ? sum + overlap * Math.max(0, 1 - b.downlinkShare) : sum;
    }, 0);
  const startEndS = Math.min(window.lastByteS, window.firstGetS + START_SPAN_S);
  const fetches = shoal.nodes.map((n) => n.fetchSeconds).filter((s): s is number => typeof s === 'number').sort((a, b) => a - b);
  const median = fetches[Math.floor((fetches.length - 1) / 2)];
  lines.push(
    '',
    `While the registry was sending, the mean node left ${unusedS(window.firstGetS, window.lastByteS).toFixed(1)} s of its downlink unused (at the registry's rate): ` +
      `${unusedS(window.firstGetS, startEndS).toFixed(1)} s in its first ${START_SPAN_S} s, ${unusedS(startEndS, window.lastByteS).toFixed(1)} s after;` +
      (median === undefined ? '' : ` the median node finished ${(median - window.lastByteS).toFixed(1)} s after that last byte (p50 ${(median / run.lineRateSeconds).toFixed(2)} × S/B).`),
  );
  // How far the nodes trail the registry is set by how long a fresh piece takes to reach them all.
  lines.push(
    '',
    '| supernode began the piece (s) | pieces | its copy to the first node (s) | to every node, mean (median) (s) | nodes it reached by relay |',
    '| --- | ---: | ---: | ---: | ---: |',
  );
  for (const w of pieceSpread(nodes, spreadS, window.lastByteS)) {
    lines.push(`| ${w.fromS.toFixed(0)}–${w.toS.toFixed(0)} | ${w.pieces} | ${w.seedCopyS.toFixed(2)} | ${w.toAllMeanS.toFixed(2)} (${w.toAllMedianS.toFixed(2)}) | ${w.relayedTo.toFixed(1)} of ${nodes.length - 1} |`);
  }
  const shortfall = medianShortfallBytes(nodes, window.lastByteS);
  lines.push(
    '',
    `At the registry's last byte the median node lacked ${(shortfall / MIB).toFixed(1)} MiB of whole pieces: ${(shortfall / registryBytesPerS).toFixed(2)} s at the registry's rate` +
      (median === undefined ? '.' : `, where it finished ${(median - window.lastByteS).toFixed(2)} s after that byte (ctr's end).`),
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`swarm-timeline: ${(err as Error).message}\n`);
  process.exit(1);
});
