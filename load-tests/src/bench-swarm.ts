/**
 * `npm run bench:swarm` (as root) — N nodes pull the same new image at the same moment,
 * on a LAN where every link is shaped to B, in three modes, each from fresh state (in
 * shoal mode the node agents and the supernode first serve a smaller warm-up image to
 * every node, unmeasured: --warmup-mib):
 *
 *   direct  every node's containerd pulls from the registry (`ctr pull --plain-http`)
 *   cache   every node pulls from a central pull-through cache (docker-registry in
 *           proxy mode) on the supernode's host
 *   shoal   every node pulls through its own Shoal proxy (`shoal node`; hosts.toml
 *           written by `shoal containerd-config`), `shoal supernode` on its own host
 *
 * Hosts are network namespaces on one bridge (see netns/topology.ts): the registry
 * 10.213.0.1, the supernode 10.213.0.2, node i 10.213.0.(10+i). Every link is limited to
 * B in both directions with one htb class per peer (netns/shaping.ts); a TCP check
 * verifies the shaping before anything is measured (netns/verify-shaping.ts).
 *
 * Reported per mode: each node's completion time (ctr exit; and fetch = until ctr starts
 * unpacking) as a ratio to S/B, the time one node needs at line rate; registry and
 * supernode-host egress in multiples of S from the interfaces' tx_bytes counters (and as
 * the shapers count them, with the supernode host's downlink and its registry share); for
 * Shoal where each node's proxy got its bytes; cut bodies (blob GETs containerd resumed
 * with `Range`, from `ctr --debug`) and blob bytes the registry sent to each client
 * address (its JSON access log: node addresses there are nodes that left the swarm);
 * the CPU-seconds of every process (user + sys from /proc/<pid>/stat) and per GiB it
 * moved; what each host's TCP sent again after a loss and its retransmission timeouts
 * (the kernel's counters in each namespace); the machine's CPU busy fraction, to tell a
 * network-bound run from a CPU-bound one. `--rate-mbit` takes a list: the LAN is rebuilt
 * at each rate (a sweep), and the sweep is plotted against the rate. `--pulls K` measures
 * K pulls per mode, each of a new image, on the same hosts and processes: a run's spread
 * costs a minute per pull instead of a LAN, a check and a warm-up each. Writes
 * load-tests/results/bench-swarm-<date>.json and plots (SVG).
 *
 * Run with --help for the flags.
 * Network namespaces, veths and processes are removed on exit, on error and on SIGINT,
 * and leftovers of a crashed run are removed at start. Nothing touches the root
 * namespace's interfaces or routes; namespaces have no route out.
 *
 * Length: this file is over 600 lines because it is one harness run top to bottom
 * (flags, each mode, the report, the sweep) over one shared context; the parts that
 * stand alone are in netns/ (topology, shaping, processes) and lib/ (image, plots).
 */
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  buildImage,
  makeTempDir,
  minimalEnv,
  removeTempDir,
  requireTools,
  runChecked,
  runCommand,
  startContainerd,
  parseCtrDebugLog,
  stopAllProcesses,
  whichTool,
  type RunningContainerd,
} from '@shoal/testkit';
import { cpuInWindow, startCpuWindow, type CpuReport } from './netns/cpu.js';
import { linkBytesIn, runInChecked, spawnGated, type GatedProcess } from './netns/exec.js';
import { imageNodeBinary } from './lib/image-runtime.js';
import { congestionControlIn, describeTcp, hostsTcpSince, setCongestionControl, tcpOfHosts, type TcpCounters } from './netns/tcp-counters.js';
import { linePlotSvg, type Series } from './lib/svg-plot.js';
import { layerSizes } from './lib/image-shape.js';
import { peakRssMiB } from './lib/shoal-processes.js';
import { MAX_CHAIN_MEMBERS } from '@shoal/supernode';
import {
  blobsServed,
  proxyStats,
  proxyStatsSince,
  REGISTRY_PORT,
  SHOAL,
  startRegistryIn,
  startShoalNodeIn,
  startSupernodeIn,
  SUPERNODE_PORT,
  supernodePeerCount,
  supernodePieceSends,
  waitNodeReady,
  PROXY_LISTEN,
  type NsProcess,
} from './netns/services.js';
import { barChartSvg } from './netns/svg.js';
import { BRIDGE_NS, cleanLeftovers, createTopology, DEFAULT_MTU, destroySync, HOST_IF, PREFIX, type Host, type Topology } from './netns/topology.js';
import { verifyShaping, type ShapingCheck } from './netns/verify-shaping.js';
import { classIdFor, shapedClassesIn, shapedSentIn, type ShapedSent } from './netns/shaping.js';
import { freshFileWriteCpuPerGiB } from './lib/fresh-write.js';
import { describeBlobWindows, registryWindow, type RegistryWindow } from './lib/registry-window.js';
import { SMALL_BLOB_BYTES } from '@shoal/supernode';
import { tcpGoodput } from './sim/simulation.js';

const MiB = 1024 * 1024;
const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));
const DEFAULT_SVG = fileURLToPath(new URL('../../docs/img/bench-swarm.svg', import.meta.url));
const REPOSITORY = 'bench/swarm';
/** The warm-up image's tag (--warmup-mib): other layers, the same repository. */
const WARMUP_TAG = 'warmup';
/** Before a measured pull (after the warm-up, a preheat or the pull before): the last announcements settle. */
const SETTLE_MS = 3_000;
/** Node i is 10.213.0.(NODE_OCTET_BASE + i). */
const NODE_OCTET_BASE = 10;
/** Containerds started (or stopped) at once: each start polls with ctr. */
const START_CONCURRENCY = 4;
/** Waiting for every node to join the supernode before the barrier. @default 60 s */
const JOIN_TIMEOUT_MS = 60_000;
/** Let every gated ctr reach its `read` before the barrier. */
const GATE_SETTLE_MS = 1_000;
/** The end of each ctr's stderr kept for its debug log (a 5-layer pull logs a few KiB; retries more). */
const CTR_LOG_KEEP_BYTES = 8 * MiB;
const GiB = 1024 * MiB;

type Mode = 'direct' | 'cache' | 'shoal';
const ALL_MODES: readonly Mode[] = ['direct', 'cache', 'shoal'];

/** Where the image's Node.js binary is extracted once (--shoal-runtime image). */
const IMAGE_RUNTIME_CACHE = fileURLToPath(new URL('../../.cache/shoal-bench', import.meta.url));
const DEFAULT_SWEEP_SVG = fileURLToPath(new URL('../../docs/img/bench-swarm-sweep.svg', import.meta.url));
const USAGE = `usage: npm run bench:swarm -- [options]   (as root; set SHOAL_BENCH_NETNS_TAG on a shared machine)
  --nodes N             node hosts (16)
  --size-mib S          image size, MiB, in 5 layers (256)
  --layers K            the image in K layers of equal size instead (5 of ½, ¼, ⅛, 1/16, 1/16 of S)
  --max-concurrent-downloads K  layers each ctr fetches at once (0: all, ctr's default; the CRI
                        plugin's default, how the kubelet pulls, is 3)
  --fetch-only          every node runs ctr content fetch instead of ctr images pull: the same
                        fetch of every layer, all at once, without the unpack (where N
                        containerds unpack on this machine's cores while the rest still fetch)
  --rate-mbit B[,B...]  every link's rate, Mbit/s; a list sweeps the rate, rebuilding the LAN at each (200)
  --modes M[,M...]      direct, cache, shoal (all three)
  --baseline-rates B[,B...]  run direct and cache only at these rates (every rate of --rate-mbit)
  --mtu M               every link's MTU (1500; 9000: jumbo frames, less per-packet work per byte)
  --tcp-cc NAME         every host's TCP congestion control, e.g. cubic or bbr (the machine's default)
  --preheat             shoal mode: the supernode's cache holds the image before each measured pull
                        (shoal preheat, without --nodes), as after a preheat or an earlier wave of nodes
  --chain-members N     shoal mode: the supernode schedules a swarm of up to N nodes as a chain
                        (shoal supernode --chain-members; 0, its default: off)
  --warmup-mib W        shoal mode: every node first pulls a W MiB image, not measured, as a
                        node agent that has run for a while would have (32; 0: fresh processes)
  --no-sync             before a measured pull, leave what the warm-up or the pull before wrote
                        in memory (the kernel writes it back 30 s after, during the pull) instead
                        of writing it to disk first
  --pulls K             measured pulls per mode and rate, each of a new image of the same shape,
                        one after another on the same hosts and processes; the report gives each
                        and their median (1)
  --mode-timeout-s T    a measured pull's ctrs are killed after T s (2.5 × (N+1) × S/B + 60, at least 300)
  --svg PATH            per-node bar chart of a single-rate run (docs/img/bench-swarm.svg; '' for none)
  --sweep-svg PATH      the sweep's plots, PATH and PATH with -egress (docs/img/bench-swarm-sweep.svg; '' for none)
  --shoal PATH          the shoal executable to run (this repository's)
  --shoal-runtime R     the Node.js that runs the Shoal processes: harness (this one) or image
                        (the one the Shoal image ships, from dist/shoal-image.oci.tar: npm run image)
  --label TEXT          what was measured (the commit); in the JSON and the plots
  --shaping-only        build the LAN, check the shaping, stop
  --keep                keep the work dir until the next run
  -h, --help            this text
`;

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: '16' },
    'size-mib': { type: 'string', default: '256' },
    layers: { type: 'string' },
    'max-concurrent-downloads': { type: 'string', default: '0' },
    'fetch-only': { type: 'boolean', default: false },
    preheat: { type: 'boolean', default: false },
    'no-sync': { type: 'boolean', default: false },
    'rate-mbit': { type: 'string', default: '200' },
    mtu: { type: 'string', default: String(DEFAULT_MTU) },
    'tcp-cc': { type: 'string' },
    modes: { type: 'string', default: ALL_MODES.join(',') },
    'baseline-rates': { type: 'string' },
    'mode-timeout-s': { type: 'string' },
    'warmup-mib': { type: 'string', default: '32' },
    'chain-members': { type: 'string', default: '0' },
    pulls: { type: 'string', default: '1' },
    svg: { type: 'string', default: DEFAULT_SVG },
    'sweep-svg': { type: 'string', default: DEFAULT_SWEEP_SVG },
    shoal: { type: 'string', default: SHOAL },
    'shoal-runtime': { type: 'string', default: 'harness' },
    label: { type: 'string', default: '' },
    'shaping-only': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

function intFlag(name: string, text: string | undefined, min: number, max: number): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`--${name} must be an integer in [${min}, ${max}], got ${String(text)}`);
  return v;
}

const NODES = intFlag('nodes', args.nodes, 1, 254 - NODE_OCTET_BASE);
const SIZE_MIB = intFlag('size-mib', args['size-mib'], 8, 64 * 1024);
const LAYERS = args.layers === undefined ? undefined : intFlag('layers', args.layers, 1, 64);
const MAX_CONCURRENT_DOWNLOADS = intFlag('max-concurrent-downloads', args['max-concurrent-downloads'], 0, 64);
const FETCH_ONLY = args['fetch-only'];
const PREHEAT = args.preheat;
const SYNC_BEFORE_PULL = !args['no-sync'];
// ctr content fetch has no such flag: it fetches every layer at once, as pull does by default.
if (FETCH_ONLY && MAX_CONCURRENT_DOWNLOADS > 0) throw new Error('--fetch-only fetches every layer at once: it cannot be combined with --max-concurrent-downloads');
const WARMUP_MIB = args['warmup-mib'] === '0' ? 0 : intFlag('warmup-mib', args['warmup-mib'], 8, 1024);
const CHAIN_MEMBERS = intFlag('chain-members', args['chain-members'], 0, MAX_CHAIN_MEMBERS);
const PULLS = intFlag('pulls', args.pulls, 1, 50);
/** The measured images' tags, one per pull: `v1` is the image of a single-pull run. */
const TAGS = Array.from({ length: PULLS }, (_, i) => `v${i + 1}`);
const intList = (name: string, text: string | undefined): number[] => (text ?? '').split(',').filter((t) => t !== '').map((t) => intFlag(name, t, 1, 100_000));
const RATES = intList('rate-mbit', args['rate-mbit']);
const MTU = intFlag('mtu', args.mtu, 576, 65_535);
if (RATES.length === 0) throw new Error('--rate-mbit: at least one rate');
const BASELINE_RATES = args['baseline-rates'] === undefined ? RATES : intList('baseline-rates', args['baseline-rates']);
const SHOAL_BIN = args.shoal ?? SHOAL;
if (args['shoal-runtime'] !== 'harness' && args['shoal-runtime'] !== 'image') {
  console.error(`--shoal-runtime must be harness or image, not ${JSON.stringify(args['shoal-runtime'])}\n${USAGE}`);
  process.exit(2);
}
/** The Node.js that runs the Shoal processes (set in main: the image's is extracted first). */
let shoalRuntime: { kind: 'harness' | 'image'; path: string; version: string } = { kind: 'harness', path: process.execPath, version: process.version };
const MODES = (args.modes ?? '').split(',').filter((m) => m !== '') as Mode[];
for (const m of MODES) if (!ALL_MODES.includes(m)) throw new Error(`--modes: unknown mode ${m} (direct, cache, shoal)`);

const log = (msg: string): void => void process.stderr.write(`[bench-swarm ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (s[lo] as number) + ((s[hi] as number) - (s[lo] as number)) * (pos - lo);
}

interface NodeResult {
  node: string;
  ip: string;
  ok: boolean;
  /** Seconds from the barrier until ctr printed `unpacking` (all content fetched). */
  fetchSeconds: number | null;
  /** Seconds from the barrier until ctr exited 0. */
  totalSeconds: number | null;
  /** `ctr images check`: content complete and unpacked. */
  unpacked: boolean;
  error?: string;
  /** Shoal mode, during this pull: bytes the node's proxy served, by source. */
  sources?: Record<string, number>;
  /** Shoal mode, during this pull: blobs the proxy sent to the registry instead, by reason. */
  fallbacks?: Record<string, number>;
  /** Shoal mode, during this pull: pieces this node's peer sent to other peers, and of them the ones relayed while they still arrived. */
  piecesServed?: number;
  piecesRelayed?: number;
  /** Shoal mode: why the proxy's /metrics could not be read. */
  metricsError?: string;
  /** Bytes this node's link sent during the pull (uploads to peers, requests). */
  txBytes: number;
  /** Bytes this node's link received during the pull. */
  rxBytes: number;
  /** Blob GETs containerd reopened with `Range: bytes=<offset>-` after a body was cut (from `ctr --debug`). */
  rangeResumes: number;
  /** Blob GETs containerd sent to the registry itself and got 2xx (it left the mirror). */
  ctrRegistryFetches: number;
}

interface ModeResult {
  mode: Mode;
  /** Which of the mode's measured pulls this is (1-based), when --pulls is above 1. */
  pull?: number;
  timedOut: boolean;
  timeoutSeconds: number;
  /** Barrier to last ctr exit. */
  pullWallSeconds: number;
  /** When the pulls were released: Unix ms (the services' logs carry that clock), and on the CPU samples' clock (`atMs`). */
  barrierAtUnixMs: number;
  barrierAtMs: number;
  /** Mode set-up (fresh containerds and services) to torn down. */
  modeWallSeconds: number;
  nodes: NodeResult[];
  egressBytes: { registry: number; supernodeHost: number; nodesTotal: number };
  /** The same links' bytes as their shapers (root htb qdiscs) count them: every segment's headers included; absent when unreadable. */
  shapedEgressBytes?: { registry: number; supernodeHost: number; nodesTotal: number };
  /**
   * The supernode (or cache) host's downlink as its shaper counts it: everything, and what
   * came from the registry. The rest (the nodes' requests, ACKs and control) shares the
   * link with the back-to-source. Absent when unreadable.
   */
  shapedSupernodeHostRx?: { total: number; fromRegistry: number };
  /** Bytes received by the supernode (or cache) host's link: its back-to-source. */
  supernodeHostRxBytes: number;
  /** From the registry's access log: blob bytes it sent, by client address. */
  registryBlobBytesByClient: Record<string, number>;
  /** From the registry's access log: blob GETs answered with a body (200, or 206 when ranged) and bytes, by client address. */
  registryBlobGetsByClient: Record<string, { count: number; bytes: number }>;
  /** Seconds from the barrier to the first blob GET the registry answered and to the last byte of any: the registry's part of the pull; and each layer's. */
  registryBlobWindow?: RegistryWindow;
  /** Shoal mode: nodes the supernode listed before the barrier. */
  peersJoined?: number;
  /** The hosts' TCP during the pull (the kernel's counters in each namespace); absent when unreadable. */
  tcp?: { registry: TcpCounters; supernodeHost: TcpCounters; nodes: TcpCounters };
  /** Shoal mode: pieces the supernode sent during the pull, and of them the ones passed on while they still arrived from the registry. */
  seedPieces?: { served: number; cutThrough: number };
  cpu: CpuReport;
  /** Peak resident memory (VmHWM, MiB) since start of each long-lived process of `cpu.perProcess` still alive after the pull, by pid. */
  peakRssMiB?: Record<number, number>;
  /** The CPU in the pull's two phases: barrier to the first node's last byte (ctr begins unpacking), then to the last ctr exit. */
  cpuPhases: { transfer: CpuPhase; unpackTail: CpuPhase };
}

interface CpuPhase {
  seconds: number;
  meanBusy: number;
  saturatedShare: number;
}

interface Ctx {
  topo: Topology;
  rateMbit: number;
  work: string;
  origin: NsProcess;
  sBytes: number;
  lineRateSeconds: number;
  modeTimeoutSeconds: number;
  /** Service logs of each mode are copied here. */
  logsDir: string;
  /** The hosts' TCP congestion control (the machine's default: it changes how the FIFOs fill). */
  tcpCongestionControl: string;
}

const ref = (registryIp: string, tag: string): string => `${registryIp}:${REGISTRY_PORT}/${REPOSITORY}:${tag}`;

/**
 * Shoal mode, before the measured pull: every node pulls the warm-up image at once, through
 * the swarm. A node agent in a cluster runs for days; freshly started, its first pull also
 * pays V8's one-time work (compiling the hot functions, growing the heap): `perf` over a
 * 25 Mbit/s pull of freshly started processes put a quarter of their CPU in the compilers
 * and another fifth in the garbage collector's marking. The other modes run Go processes
 * (containerd, docker-registry), which have no such warm-up.
 */
async function warmUp(ctx: Ctx, containerds: readonly RunningContainerd[], nodeHosts: readonly Host[], reg: Host): Promise<void> {
  const t = performance.now();
  await Promise.all(
    containerds.map((c, i) =>
      runInChecked((nodeHosts[i] as Host).ns, 'ctr', ['--address', c.socket, 'images', 'pull', '--hosts-dir', c.hostsDir, ref(reg.ip, WARMUP_TAG)], {
        env: minimalEnv({ CONTAINERD_SNAPSHOTTER: c.snapshotter }),
        timeoutMs: ctx.modeTimeoutSeconds * 1000,
      }),
    ),
  );
  log(`shoal: warm-up pull of ${WARMUP_MIB} MiB on every node took ${((performance.now() - t) / 1000).toFixed(1)} s`);
  await settle();
}

/** A measured pull's results, one line, as soon as it is done. */
function logPull(ctx: Ctx, r: ModeResult): void {
  const s = summarize(r, ctx);
  if (r.mode === 'shoal' && upstreamShare(r) >= 0.05) log(`shoal: WARNING ${(upstreamShare(r) * 100).toFixed(0)} % of proxied blob bytes came from the registry (fallback)`);
  log(
    `${ctx.rateMbit} Mbit/s ${labelOf(r)}: p50 ${fmt(s.p50)} × S/B, max ${fmt(s.max)} × S/B, registry ${s.registryOfS.toFixed(2)} × S, supernode host ${s.supernodeHostOfS.toFixed(2)} × S, ` +
      `${s.rangeResumes} cut bodies, CPU ${(r.cpu.meanBusy * 100).toFixed(0)} % busy`,
  );
}

/**
 * With several pulls per mode (--pulls): per mode, the median and range of each pull's
 * p50 and max, the most egress any pull had, and the cut bodies and failed nodes of all.
 */
function pullsSummary(sums: readonly Summary[], results: readonly ModeResult[]): string[] {
  if (PULLS === 1) return [];
  const lines = ['', `Over the ${PULLS} pulls of each mode (median, and the range in brackets):`, ''];
  for (const mode of ALL_MODES) {
    const of = sums.filter((s) => s.mode === mode);
    if (of.length === 0) continue;
    const spread = (pick: (s: Summary) => number | null): string => {
      const xs = of.map(pick).map((x) => x ?? Number.POSITIVE_INFINITY);
      return `${fmt(quantile(xs, 0.5))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
    };
    const failed = results.filter((r) => r.mode === mode).reduce((a, r) => a + r.nodes.filter((n) => !n.ok).length, 0);
    lines.push(
      `- ${mode}, ${of.length} pulls: p50 ${spread((s) => s.p50)} × S/B, max ${spread((s) => s.max)} × S/B; ` +
        `registry egress at most ${Math.max(...of.map((s) => s.registryOfS)).toFixed(2)} × S, supernode host at most ${Math.max(...of.map((s) => s.supernodeHostOfS)).toFixed(2)} × S; ` +
        `${of.reduce((a, s) => a + s.rangeResumes, 0)} cut bodies and ${failed} failed node pulls in all`,
    );
  }
  return lines;
}

/** A result's name in the report: its mode, and which pull when there are several. */
function labelOf(r: ModeResult): string {
  return r.pull === undefined ? r.mode : `${r.mode} #${r.pull}`;
}

/** The hosts and processes a mode's pulls run on (set up once per mode). */
interface ModeHosts {
  reg: Host;
  sn: Host;
  nodeHosts: Host[];
  containerds: RunningContainerd[];
  shoalNodes: NsProcess[];
  services: NsProcess[];
}

/** The hosts' uplink bytes as their shapers count them (ShapedSent); undefined, with a line in the log, when tc cannot tell. */
async function shapedEgressOf(reg: Host, sn: Host, nodeHosts: readonly Host[]): Promise<{ registry: number; supernodeHost: number; nodesTotal: number } | undefined> {
  try {
    const of = (h: Host): Promise<ShapedSent> => shapedSentIn(h.ns, HOST_IF);
    const [r, s, nodes] = await Promise.all([of(reg), of(sn), Promise.all(nodeHosts.map(of))]);
    return { registry: r.bytes, supernodeHost: s.bytes, nodesTotal: nodes.reduce((a, n) => a + n.bytes, 0) };
  } catch (err) {
    log(`cannot read the shapers' counters: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

/** The supernode host's downlink (its bridge port's egress) as its shaper counts it; undefined, with a line in the log, when tc cannot tell. */
async function shapedDownlinkOf(sn: Host, reg: Host): Promise<{ total: number; fromRegistry: number } | undefined> {
  try {
    const classes = await shapedClassesIn(BRIDGE_NS, sn.bridgePort);
    const total = classes.get('1:1')?.bytes;
    const fromRegistry = classes.get(classIdFor(reg.ip))?.bytes;
    if (total === undefined || fromRegistry === undefined) throw new Error(`no class 1:1 or ${classIdFor(reg.ip)} on ${sn.bridgePort}`);
    return { total, fromRegistry };
  } catch (err) {
    log(`cannot read the supernode host's downlink classes: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

/** Every counter a pull is measured by, read at once: the links' bytes, the registry's log, the hosts' TCP, the shapers. */
async function countersOf(ctx: Ctx, hosts: ModeHosts) {
  const { reg, sn, nodeHosts } = hosts;
  const [regLink, snLink, nodes, served, tcp, shaped, shapedDown] = await Promise.all([
    linkBytesIn(reg.ns, HOST_IF),
    linkBytesIn(sn.ns, HOST_IF),
    Promise.all(nodeHosts.map((h) => linkBytesIn(h.ns, HOST_IF))),
    blobsServed(ctx.origin),
    tcpOfHosts(reg, sn, nodeHosts, log),
    shapedEgressOf(reg, sn, nodeHosts),
    shapedDownlinkOf(sn, reg),
  ]);
  return { reg: regLink, sn: snLink, nodes, served, tcp, shaped, shapedDown };
}

/** Peak resident memory since start (VmHWM, MiB) of each process still alive, by pid. */
async function peakRssOf(pids: number[]): Promise<Record<number, number>> {
  const out: Record<number, number> = {};
  for (const pid of pids) {
    const mib = await peakRssMiB(pid).catch(() => undefined);
    if (mib !== undefined) out[pid] = mib;
  }
  return out;
}

/** One measured pull of `tag` on every node at once, behind the barrier. */
async function measurePull(ctx: Ctx, mode: Mode, hosts: ModeHosts, tag: string): Promise<ModeResult> {
  const { reg, sn, nodeHosts, containerds, shoalNodes, services } = hosts;
  const seedBefore = mode === 'shoal' ? await supernodePieceSends(sn).catch(() => undefined) : undefined;
  // The proxies' counters run from their start (the warm-up, earlier pulls): this pull's part is the difference.
  const statsBefore = mode === 'shoal' ? await Promise.all(nodeHosts.map((h) => proxyStats(h).catch(() => undefined))) : [];
  const before = await countersOf(ctx, hosts);
  const cpu = await startCpuWindow(
    {
      containerd: containerds.map((c) => c.process.pid),
      'shoal-node': shoalNodes.map((n) => n.process.pid),
      [mode === 'cache' ? 'cache' : 'supernode']: services.map((s) => s.process.pid),
      registry: [ctx.origin.process.pid],
    },
    'ctr',
  );

  const imageRef = ref(mode === 'cache' ? sn.ip : reg.ip, tag);
  const pulls: GatedProcess[] = containerds.map((c, i) => {
    const modeArgs = mode === 'shoal' ? ['--hosts-dir', c.hostsDir] : ['--plain-http'];
    // --debug logs every HTTP exchange: resumes with Range, hosts that served each blob.
    const concurrency = MAX_CONCURRENT_DOWNLOADS > 0 ? ['--max-concurrent-downloads', String(MAX_CONCURRENT_DOWNLOADS)] : [];
    const command = FETCH_ONLY ? ['content', 'fetch'] : ['images', 'pull', ...concurrency];
    return spawnGated((nodeHosts[i] as Host).ns, 'ctr', ['--debug', '--address', c.socket, ...command, ...modeArgs, imageRef], {
      // ctr reads CONTAINERD_* and proxy variables: only ours.
      env: minimalEnv({ CONTAINERD_SNAPSHOTTER: c.snapshotter }),
      watch: { unpacking: /unpacking / },
      stderrKeepBytes: CTR_LOG_KEEP_BYTES,
    });
  });
  await sleep(GATE_SETTLE_MS);
  log(`${mode}: ${pulls.length} pulls of ${imageRef} — go`);
  const t0 = performance.now();
  for (const p of pulls) p.release();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    log(`${mode}: TIMEOUT after ${ctx.modeTimeoutSeconds} s, killing the pulls still running`);
    for (const p of pulls) p.kill();
  }, ctx.modeTimeoutSeconds * 1000);
  const progress = setInterval(() => log(`${mode}: ${((performance.now() - t0) / 1000).toFixed(0)} s`), 30_000);
  const done = await Promise.all(pulls.map((p) => p.done));
  clearTimeout(timer);
  clearInterval(progress);
  const pullWallSeconds = (Math.max(...done.map((d) => d.endedAt)) - t0) / 1000;
  const cpuReport = await cpu.stop();
  const peakRss = await peakRssOf(cpuReport.perProcess.map((p) => p.pid));

  const after = await countersOf(ctx, hosts);
  const byClient: Record<string, number> = {};
  const getsByClient: Record<string, { count: number; bytes: number }> = {};
  const served = after.served.slice(before.served.length);
  const barrierAtUnixMs = performance.timeOrigin + t0;
  // Layers, not the config: larger than a blob that skips the supernode's registry fetch slots.
  const registryBlobWindow = registryWindow(served, barrierAtUnixMs, SMALL_BLOB_BYTES);
  for (const b of served) {
    byClient[b.remoteAddr] = (byClient[b.remoteAddr] ?? 0) + b.bytes;
    const g = (getsByClient[b.remoteAddr] ??= { count: 0, bytes: 0 });
    g.count++;
    g.bytes += b.bytes;
  }

  // ctr's debug log (every HTTP exchange, timestamped) beside the services' logs.
  const ctrLogs = join(ctx.logsDir, mode, PULLS > 1 ? `ctr-${tag}` : 'ctr');
  await mkdir(ctrLogs, { recursive: true });
  await Promise.all(nodeHosts.map((h, i) => writeFile(join(ctrLogs, `${h.name}.stderr.log`), (done[i] as Awaited<GatedProcess['done']>).stderrTail)));

  const nodes: NodeResult[] = await Promise.all(
    nodeHosts.map(async (h, i) => {
      const d = done[i] as Awaited<GatedProcess['done']>;
      const c = containerds[i] as RunningContainerd;
      const ok = d.code === 0;
      const unpacked = ok && !FETCH_ONLY ? await c.imageUnpacked(imageRef).catch(() => false) : false;
      const complete = ok && FETCH_ONLY ? await c.imageComplete(imageRef).catch(() => false) : unpacked;
      // ctr content fetch exits when the last layer is in; ctr images pull prints `unpacking` then.
      const fetchedAt = FETCH_ONLY ? (complete ? d.endedAt : undefined) : d.seen.get('unpacking');
      const requests = parseCtrDebugLog(d.stderrTail);
      const blobGets = requests.filter((q) => q.method === 'GET' && /\/blobs\/sha256:/.test(q.url));
      const regHost = `${reg.ip}:${REGISTRY_PORT}`;
      const r: NodeResult = {
        node: h.name,
        ip: h.ip,
        ok: ok && complete,
        fetchSeconds: fetchedAt === undefined ? null : (fetchedAt - t0) / 1000,
        totalSeconds: ok ? (d.endedAt - t0) / 1000 : null,
        unpacked,
        txBytes: (after.nodes[i]?.tx ?? 0) - (before.nodes[i]?.tx ?? 0),
        rxBytes: (after.nodes[i]?.rx ?? 0) - (before.nodes[i]?.rx ?? 0),
        rangeResumes: blobGets.filter((q) => q.requestHeaders.range !== undefined && !/^bytes=0-$/.test(q.requestHeaders.range)).length,
        ctrRegistryFetches: mode === 'shoal' ? blobGets.filter((q) => q.host === regHost && q.status !== undefined && q.status < 300).length : 0,
      };
      if (!ok) r.error = `ctr exited ${String(d.code)} ${String(d.signal)}: ${d.stderrTail.trim().split('\n').filter((l) => !l.includes('level=debug')).slice(-3).join(' | ')}`;
      if (mode === 'shoal') {
        try {
          const before = statsBefore[i];
          if (before === undefined) throw new Error('its metrics were unreadable before the pull');
          const stats = proxyStatsSince(await proxyStats(h), before);
          r.sources = stats.bytesBySource;
          r.fallbacks = stats.fallbacksByReason;
          r.piecesServed = stats.piecesServed;
          r.piecesRelayed = stats.piecesRelayed;
        } catch (err) {
          r.metricsError = err instanceof Error ? err.message : String(err);
          log(`shoal: ${h.name}: cannot read the proxy's metrics: ${r.metricsError}`);
        }
      }
      return r;
    }),
  );
  for (const n of nodes) if (!n.ok) log(`${mode}: ${n.node} FAILED: ${n.error ?? (FETCH_ONLY ? 'content incomplete' : 'image not unpacked')}`);

  const result: ModeResult = {
    mode,
    timedOut,
    timeoutSeconds: ctx.modeTimeoutSeconds,
    pullWallSeconds,
    barrierAtUnixMs,
    barrierAtMs: t0,
    modeWallSeconds: 0,
    nodes,
    egressBytes: {
      registry: after.reg.tx - before.reg.tx,
      supernodeHost: after.sn.tx - before.sn.tx,
      nodesTotal: after.nodes.reduce((a, b) => a + b.tx, 0) - before.nodes.reduce((a, b) => a + b.tx, 0),
    },
    supernodeHostRxBytes: after.sn.rx - before.sn.rx,
    registryBlobBytesByClient: byClient,
    registryBlobGetsByClient: getsByClient,
    ...(registryBlobWindow === undefined ? {} : { registryBlobWindow }),
    cpu: cpuReport,
    peakRssMiB: peakRss,
    cpuPhases: pullPhases(cpuReport, t0, FETCH_ONLY ? [] : done.map((d) => d.seen.get('unpacking')), Math.max(...done.map((d) => d.endedAt))),
  };
  if (before.tcp !== undefined && after.tcp !== undefined) result.tcp = hostsTcpSince(after.tcp, before.tcp);
  if (before.shaped !== undefined && after.shaped !== undefined) {
    result.shapedEgressBytes = { registry: after.shaped.registry - before.shaped.registry, supernodeHost: after.shaped.supernodeHost - before.shaped.supernodeHost, nodesTotal: after.shaped.nodesTotal - before.shaped.nodesTotal };
  }
  if (before.shapedDown !== undefined && after.shapedDown !== undefined) {
    result.shapedSupernodeHostRx = { total: after.shapedDown.total - before.shapedDown.total, fromRegistry: after.shapedDown.fromRegistry - before.shapedDown.fromRegistry };
  }
  const seedAfter = mode === 'shoal' ? await supernodePieceSends(sn).catch(() => undefined) : undefined;
  if (seedBefore !== undefined && seedAfter !== undefined) {
    result.seedPieces = { served: seedAfter.served - seedBefore.served, cutThrough: seedAfter.cutThrough - seedBefore.cutThrough };
  }
  return result;
}

/** --preheat: `shoal preheat IMAGE` from the supernode's host, so that the measured pull finds the image in its cache. */
async function preheatSupernode(sn: Host, image: string): Promise<void> {
  const started = performance.now();
  await runInChecked(sn.ns, shoalRuntime.path, [SHOAL_BIN, 'preheat', image, '--supernode', `http://127.0.0.1:${SUPERNODE_PORT}`], { env: minimalEnv(), timeoutMs: 600_000 });
  log(`shoal: preheated ${image} into the supernode in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  await settle();
}

/**
 * Before a measured pull: what was written before it goes to disk now, and announcements
 * settle. The warm-up's unpacked layers (0.5 GB, sixteen hosts' worth on this machine's one
 * disk and two cores) are not synced by containerd; the kernel writes dirty pages back 30 s
 * after they were dirtied, which was the measured pull's last seconds (N = 16, 25 Mbit/s:
 * 1.5 GB written then instead of 1.0). `--no-sync` leaves it so.
 */
async function settle(): Promise<void> {
  if (SYNC_BEFORE_PULL) await runCommand('sync', [], { timeoutMs: 120_000 });
  await sleep(SETTLE_MS);
}

async function runMode(ctx: Ctx, mode: Mode): Promise<ModeResult[]> {
  const modeStarted = performance.now();
  const { topo } = ctx;
  const reg = topo.host('reg');
  const sn = topo.host('sn');
  const nodeHosts = topo.hosts.filter((h) => h.name.startsWith('n'));
  const dir = join(ctx.work, mode);
  await mkdir(dir, { recursive: true });

  log(`${mode}: starting ${nodeHosts.length} containerd instances`);
  const started = await mapLimit(nodeHosts, START_CONCURRENCY, (h) =>
    startContainerd({ name: `${PREFIX}${h.name}-${mode}`, netns: h.ns, readyTimeoutMs: 60_000 }).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))),
  );
  const failed = started.find((c): c is Error => c instanceof Error);
  const containerds = started.filter((c): c is RunningContainerd => !(c instanceof Error));
  if (failed !== undefined) {
    await Promise.all(containerds.map((c) => c.stop()));
    throw failed;
  }
  const services: NsProcess[] = [];
  const shoalNodes: NsProcess[] = [];
  let peersJoined: number | undefined;
  try {
    if (mode === 'cache') {
      services.push(await startRegistryIn(sn, join(dir, 'cache'), { name: 'pull-through-cache', proxyRemoteUrl: `http://${reg.ip}:${REGISTRY_PORT}` }));
    } else if (mode === 'shoal') {
      services.push(await startSupernodeIn(sn, join(dir, 'supernode'), `${reg.ip}:${REGISTRY_PORT}`, SHOAL_BIN, shoalRuntime.path, { SHOAL_CHAIN_MEMBERS: String(CHAIN_MEMBERS) }));
      for (const [i, h] of nodeHosts.entries()) {
        const c = containerds[i] as RunningContainerd;
        shoalNodes.push(
          await startShoalNodeIn(h, join(dir, `node-${h.name}`), { supernodeUrl: `http://${sn.ip}:${SUPERNODE_PORT}`, registryHost: `${reg.ip}:${REGISTRY_PORT}`, containerdSocket: c.socket, shoalBin: SHOAL_BIN, nodeBinary: shoalRuntime.path }),
        );
        // hosts.toml as an SRE would write it: by the product.
        await runChecked(process.execPath, [SHOAL_BIN, 'containerd-config', '--certs-dir', c.hostsDir, '--proxy', `http://${PROXY_LISTEN}`, '--plain-http', `${reg.ip}:${REGISTRY_PORT}`], { env: minimalEnv() });
      }
      await mapLimit(shoalNodes, START_CONCURRENCY, (n) => waitNodeReady(n));
      const deadline = Date.now() + JOIN_TIMEOUT_MS;
      for (;;) {
        peersJoined = await supernodePeerCount(sn).catch(() => -1);
        if (peersJoined >= nodeHosts.length || Date.now() > deadline) break;
        await sleep(250);
      }
      if (peersJoined < nodeHosts.length) log(`shoal: WARNING only ${peersJoined}/${nodeHosts.length} peers joined the supernode`);
      if (WARMUP_MIB > 0) await warmUp(ctx, containerds, nodeHosts, reg);
    }

    const results: ModeResult[] = [];
    for (const [k, tag] of TAGS.entries()) {
      // Between pulls, as after the warm-up: the last announcements and writes settle before the counters start
      // (a preheat settles after itself).
      if (PREHEAT && mode === 'shoal') await preheatSupernode(sn, ref(reg.ip, tag));
      else if (k > 0) await settle();
      const result = await measurePull(ctx, mode, { reg, sn, nodeHosts, containerds, shoalNodes, services }, tag);
      if (PULLS > 1) result.pull = k + 1;
      if (peersJoined !== undefined) result.peersJoined = peersJoined;
      logPull(ctx, result);
      results.push(result);
    }
    return results;
  } finally {
    log(`${mode}: tearing down`);
    await Promise.all([...shoalNodes, ...services].map((s) => s.process.stop()));
    await keepLogs(join(ctx.logsDir, mode), [...shoalNodes, ...services]);
    await mapLimit(containerds, START_CONCURRENCY, (c) => c.stop());
    // Flush this mode's writes (content stores, unpacked layers) before the next starts.
    await runCommand('sync', [], { timeoutMs: 120_000 });
    await rm(dir, { recursive: true, force: true });
    log(`${mode}: done in ${((performance.now() - modeStarted) / 1000).toFixed(0)} s`);
  }
}

/**
 * Splits the pull at the first node's last byte: before it the links move the image; after
 * it 16 containerds unpack at once on this machine's cores (in a cluster, each on its own).
 */
function pullPhases(cpu: CpuReport, t0: number, unpackingAt: Array<number | undefined>, endedAt: number): ModeResult['cpuPhases'] {
  const seen = unpackingAt.filter((x): x is number => x !== undefined);
  const split = seen.length > 0 ? Math.min(...seen) : endedAt;
  const phase = (from: number, to: number): CpuPhase => {
    const c = cpuInWindow(cpu.samples, from, to);
    return { seconds: (to - from) / 1000, meanBusy: c.meanBusy, saturatedShare: c.saturatedShare };
  };
  return { transfer: phase(t0, split), unpackTail: phase(split, endedAt) };
}

/** Copies services' stdout/stderr logs (warn level for Shoal) out of the work dir. */
async function keepLogs(dest: string, procs: readonly NsProcess[]): Promise<void> {
  if (procs.length === 0) return;
  await mkdir(dest, { recursive: true });
  for (const p of procs) {
    for (const file of [p.process.stdoutPath, p.process.stderrPath]) {
      await copyFile(file, join(dest, `${p.host.name}-${basename(file)}`)).catch(() => {});
    }
  }
}

function fmt(x: number | null, digits = 2): string {
  return x === null || !Number.isFinite(x) ? '—' : x.toFixed(digits);
}

interface Summary {
  mode: Mode;
  /** As ModeResult.pull. */
  pull?: number;
  ok: number;
  p50: number | null;
  max: number | null;
  fetchP50: number | null;
  fetchMax: number | null;
  registryOfS: number;
  supernodeHostOfS: number;
  nodesOfS: number;
  /** The most loaded uplink's bytes over the fetch window (barrier → last node done fetching) as a share of B (≈ 1: that link was the bottleneck). */
  busiestUplinkOfB: number;
  busiestUplink: string;
  /** Blob bodies containerd resumed with Range (a cut body each), over all nodes. */
  rangeResumes: number;
  /** Blob fetches that reached the registry from node addresses (its access log), and containerd's own fetches from it (Shoal mode). */
  nodeRegistryFetches: number;
  nodeRegistryBytesOfS: number;
  /** CPU-s per GiB of image each process handled (see sweepTable); null when it did not run. */
  cpuPerGiB: { supernode: number | null; nodeMedian: number | null; nodeMax: number | null; registry: number | null };
}

function summarize(r: ModeResult, ctx: Ctx): Summary {
  const ratio = (key: 'totalSeconds' | 'fetchSeconds'): number[] => r.nodes.map((n) => (n[key] === null || !n.ok ? Number.POSITIVE_INFINITY : (n[key] as number) / ctx.lineRateSeconds));
  const total = ratio('totalSeconds');
  const fetch = ratio('fetchSeconds');
  const finite = (x: number): number | null => (Number.isFinite(x) ? x : null);
  return {
    mode: r.mode,
    ...(r.pull === undefined ? {} : { pull: r.pull }),
    ok: r.nodes.filter((n) => n.ok).length,
    p50: finite(quantile(total, 0.5)),
    max: finite(Math.max(...total)),
    fetchP50: finite(quantile(fetch, 0.5)),
    fetchMax: finite(Math.max(...fetch)),
    registryOfS: r.egressBytes.registry / ctx.sBytes,
    supernodeHostOfS: r.egressBytes.supernodeHost / ctx.sBytes,
    nodesOfS: r.egressBytes.nodesTotal / ctx.sBytes,
    ...busiest(r, ctx.rateMbit),
    rangeResumes: r.nodes.reduce((a, n) => a + n.rangeResumes, 0),
    nodeRegistryFetches: nodeRegistryFetches(r, ctx).count,
    nodeRegistryBytesOfS: nodeRegistryFetches(r, ctx).bytes / ctx.sBytes,
    cpuPerGiB: cpuPerGiB(r, ctx),
  };
}

/** Blob GETs the registry answered for node addresses (not the supernode or cache host). */
function nodeRegistryFetches(r: ModeResult, ctx: Ctx): { count: number; bytes: number } {
  if (r.mode !== 'shoal') return { count: 0, bytes: 0 };
  const sn = ctx.topo.host('sn').ip;
  let count = 0;
  let bytes = 0;
  for (const [addr, b] of Object.entries(r.registryBlobGetsByClient)) {
    if (addr === sn) continue;
    count += b.count;
    bytes += b.bytes;
  }
  return { count, bytes };
}

function cpuPerGiB(r: ModeResult, ctx: Ctx): Summary['cpuPerGiB'] {
  const of = (group: string): number[] => r.cpu.perProcess.filter((p) => p.group === group).map((p) => p.seconds);
  const sn = [...of('supernode'), ...of('cache')];
  const nodes = of('shoal-node');
  const reg = of('registry');
  const image = ctx.sBytes / GiB;
  const okNodes = r.nodes.filter((n) => n.ok).length;
  return {
    supernode: sn.length === 0 || r.supernodeHostRxBytes <= 0 ? null : (sn[0] as number) / (r.supernodeHostRxBytes / GiB),
    nodeMedian: nodes.length === 0 || okNodes === 0 ? null : quantile(nodes, 0.5) / image,
    nodeMax: nodes.length === 0 || okNodes === 0 ? null : Math.max(...nodes) / image,
    registry: reg.length === 0 || r.egressBytes.registry <= 0 ? null : (reg[0] as number) / (r.egressBytes.registry / GiB),
  };
}

function busiest(r: ModeResult, rateMbit: number): { busiestUplinkOfB: number; busiestUplink: string } {
  const links: Array<[string, number]> = [
    ['registry', r.egressBytes.registry],
    ['supernode host', r.egressBytes.supernodeHost],
    ...r.nodes.map((n): [string, number] => [n.node, n.txBytes]),
  ];
  const [name, bytes] = links.reduce((a, b) => (b[1] > a[1] ? b : a));
  // Unpacking follows the fetch and sends nothing: the link's busy time is the fetch window.
  const fetched = r.nodes.map((n) => n.fetchSeconds ?? n.totalSeconds).filter((x): x is number => x !== null);
  const windowSeconds = fetched.length > 0 ? Math.max(...fetched) : r.pullWallSeconds;
  return { busiestUplink: name, busiestUplinkOfB: (bytes * 8) / (rateMbit * 1e6 * windowSeconds) };
}

function report(ctx: Ctx, results: ModeResult[], shaping: ShapingCheck[], freshWriteCpuPerGiB: number, file: string, wallSeconds: number): string {
  const sums = results.map((r) => summarize(r, ctx));
  const lines = [
    ...(args.label === undefined || args.label === '' ? [] : [`${args.label}`]),
    `N = ${NODES} nodes, S = ${(ctx.sBytes / MiB).toFixed(1)} MiB, B = ${ctx.rateMbit} Mbit/s, S/B = ${ctx.lineRateSeconds.toFixed(2)} s, MTU ${MTU}, TCP congestion control ${ctx.tcpCongestionControl}, Shoal on Node.js ${shoalRuntime.version} (${shoalRuntime.kind === 'image' ? "the image's" : "the harness's"}); total wall time ${(wallSeconds / 60).toFixed(1)} min`,
    '',
    `Shaping check (TCP goodput; line rate × ${tcpGoodput(MTU).toFixed(3)} is the framing limit):`,
    ...shaping.map((c) => `- ${c.name}: ${c.flows.length > 3 ? `${c.flows.length} flows of ${Math.min(...c.flows.map((f) => f.mbit)).toFixed(1)}–${Math.max(...c.flows.map((f) => f.mbit)).toFixed(1)}, together ${c.aggregateMbit.toFixed(0)}` : c.flows.map((f) => `${f.mbit.toFixed(0)}`).join(' + ')} Mbit/s = ${(c.totalOfB * 100).toFixed(0)} % of B, fairness ${c.fairness.toFixed(2)} ${c.ok ? 'ok' : 'FAILED'}; a bare socket received ${(c.bytesPerRead / 1024).toFixed(1)} KiB per read, ${c.receiverCpuSecondsPerGiB.toFixed(1)} CPU-s per GiB (its sender ${Number.isNaN(c.senderCpuSecondsPerGiB) ? '–' : c.senderCpuSecondsPerGiB.toFixed(1)})`),
    `- writing S to a new file (a separate process, 1 MiB writes): ${freshWriteCpuPerGiB.toFixed(2)} CPU-s per GiB; every store and containerd pays this for new page-cache pages (0.5–0.8 here with the VM's page reporting held back; see bench:cpu)`,
    '',
    '| mode | nodes ok | p50 × S/B | max × S/B | fetch p50 | fetch max | registry egress × S | supernode-host egress × S | node egress (sum) × S | pull wall s | busiest uplink | CPU busy | CPU-saturated samples |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...sums.map((s, i) => {
      const r = results[i] as ModeResult;
      return `| ${labelOf(r)}${r.timedOut ? ' (timeout)' : ''} | ${s.ok}/${r.nodes.length} | ${fmt(s.p50)} | ${fmt(s.max)} | ${fmt(s.fetchP50)} | ${fmt(s.fetchMax)} | ${s.registryOfS.toFixed(2)} | ${s.supernodeHostOfS.toFixed(2)} | ${s.nodesOfS.toFixed(2)} | ${r.pullWallSeconds.toFixed(1)} | ${s.busiestUplink} ${(s.busiestUplinkOfB * 100).toFixed(0)} % of B | ${(r.cpu.meanBusy * 100).toFixed(0)} % | ${(r.cpu.saturatedShare * 100).toFixed(0)} % |`;
    }),
    ...pullsSummary(sums, results),
    '',
    FETCH_ONLY
      ? '(ctr content fetch: p50/max and fetch are both until ctr exits, when every layer is in. Egress from tx_bytes of the hosts\' veths.'
      : '(p50/max: until ctr exits, unpack included; fetch: until ctr starts unpacking. Egress from tx_bytes of the hosts\' veths.',
    ' Busiest uplink: its bytes over the fetch window at rate B; near 100 % that link was the bottleneck. CPU-saturated: share of 0.5 s samples with both cores ≥ 95 % busy.)',
    '',
    ...sums.map((s, i) => {
      const r = results[i] as ModeResult;
      const cpuBound = r.cpu.saturatedShare >= 0.5;
      const netBound = s.busiestUplinkOfB >= 0.85;
      const verdict = netBound ? (cpuBound ? 'network-bound (and the CPU was saturated too)' : 'network-bound') : cpuBound ? 'CPU-bound: no link was saturated while the CPU was; times are the machine\'s, not the network\'s' : 'neither link nor CPU saturated (latency- or protocol-bound)';
      const { transfer, unpackTail } = r.cpuPhases;
      const pct = (x: number): string => `${(x * 100).toFixed(0)} %`;
      return (
        `- ${labelOf(r)}: ${verdict}. Transfer (barrier to the first node's last byte): ${transfer.seconds.toFixed(1)} s, CPU ${pct(transfer.meanBusy)} busy, ${pct(transfer.saturatedShare)} of samples saturated; ` +
        (FETCH_ONLY ? 'no unpack (ctr content fetch)' : `unpack tail (to the last ctr exit): ${unpackTail.seconds.toFixed(1)} s, ${pct(unpackTail.meanBusy)} busy, ${pct(unpackTail.saturatedShare)} saturated`)
      );
    }),
    '',
    'CPU seconds during each pull window (machine: busy of wall × cores; ours by group; then the kernel and everything else):',
    '',
    '| mode | machine | containerd | ctr | shoal-node | supernode / cache | registry | bench | softirq+irq | kernel threads | other processes | iowait |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...results.map((r) => {
      const g = r.cpu.byGroup;
      const v = (k: string): number => g[k] ?? 0;
      const top = r.cpu.otherTop.filter((o) => o.seconds >= 1).map((o) => `${o.name.slice(0, 40)} ${o.seconds.toFixed(0)}`);
      return `| ${labelOf(r)} | ${r.cpu.machineSeconds.toFixed(0)} of ${(r.cpu.wallSeconds * r.cpu.cores).toFixed(0)} | ${v('containerd').toFixed(0)} | ${v('ctr').toFixed(0)} | ${v('shoal-node').toFixed(0)} | ${(v('supernode') + v('cache')).toFixed(0)} | ${v('registry').toFixed(0)} | ${v('bench').toFixed(0)} | ${(r.cpu.kernel.softirqSeconds + r.cpu.kernel.irqSeconds).toFixed(0)} | ${r.cpu.kernelThreadSeconds.toFixed(0)} | ${r.cpu.otherSeconds.toFixed(0)}${top.length > 0 ? ` (${top.join('; ')})` : ''} | ${r.cpu.kernel.iowaitSeconds.toFixed(0)} |`;
    }),
  ];
  for (const shoal of results.filter((r) => r.mode === 'shoal')) {
    const sources = [...new Set(shoal.nodes.flatMap((n) => Object.keys(n.sources ?? {})))].sort();
    const nameOf = (ip: string): string => ctx.topo.hosts.find((h) => h.ip === ip)?.name ?? ip;
    const fromNodes = Object.entries(shoal.registryBlobBytesByClient)
      .filter(([addr]) => addr !== ctx.topo.host('sn').ip)
      .map(([addr, bytes]): [string, number] => [nameOf(addr), bytes])
      .sort((a, b) => a[0].localeCompare(b[0], 'en', { numeric: true }));
    lines.push(
      '',
      `${shoal.pull === undefined ? 'Shoal' : `Shoal, pull #${shoal.pull}`}, per node (bytes each proxy served, × S, by source; peers joined before the barrier: ${String(shoal.peersJoined)}/${NODES}):`,
      '',
      `| node | time × S/B | ${sources.join(' | ')} | fallbacks to the registry | node egress × S |`,
      `| --- | --- | ${sources.map(() => '---').join(' | ')} | --- | --- |`,
      ...shoal.nodes.map((n) => {
        const fallbacks = Object.entries(n.fallbacks ?? {}).map(([reason, count]) => `${count} ${reason}`).join(', ');
        if (n.sources === undefined) return `| ${n.node} | ${fmt(n.totalSeconds === null ? null : n.totalSeconds / ctx.lineRateSeconds)} | ${sources.map(() => '?').join(' | ')} | metrics unreadable | ${(n.txBytes / ctx.sBytes).toFixed(2)} |`;
        return `| ${n.node} | ${fmt(n.totalSeconds === null ? null : n.totalSeconds / ctx.lineRateSeconds)} | ${sources.map((s) => ((n.sources?.[s] ?? 0) / ctx.sBytes).toFixed(2)).join(' | ')} | ${fallbacks === '' ? '0' : fallbacks} | ${(n.txBytes / ctx.sBytes).toFixed(2)} |`;
      }),
      '',
      ...shoalUpstreamWarning(shoal),
      ...(shoal.seedPieces === undefined ? [] : [`The supernode sent ${shoal.seedPieces.served} pieces, ${shoal.seedPieces.cutThrough} of them while they still arrived from the registry (cut-through).`, '']),
      fromNodes.length === 0
        ? 'Registry blob GETs came only from the supernode: no node fell back to the registry.'
        : `Nodes that fetched blobs from the registry themselves (containerd fallback or proxy upstream): ${fromNodes.map(([a, b]) => `${a} ${(b / ctx.sBytes).toFixed(2)} × S`).join(', ')}`,
    );
  }
  lines.push(
    '',
    'CPU per process (user + sys from /proc/<pid>/stat over the pull window) and per GiB it moved:',
    '',
    '| mode | process | CPU-s | GiB in / out on its link | CPU-s per GiB of image handled | CPU-s per GiB in + out | peak RSS since start, MiB |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const r of results) {
    const nodeIndex = new Map(r.cpu.perProcess.filter((p) => p.group === 'shoal-node').map((p, i) => [p.pid, i]));
    for (const p of r.cpu.perProcess) {
      if (p.group === 'containerd') continue;
      let name = p.group;
      let inOut: [number, number] = [0, 0];
      let handled = 0;
      if (p.group === 'registry') {
        inOut = [0, r.egressBytes.registry];
        handled = r.egressBytes.registry;
      } else if (p.group === 'supernode' || p.group === 'cache') {
        inOut = [r.supernodeHostRxBytes, r.egressBytes.supernodeHost];
        handled = r.supernodeHostRxBytes;
      } else if (p.group === 'shoal-node') {
        const n = r.nodes[nodeIndex.get(p.pid) ?? -1];
        name = `node agent ${n?.node ?? p.pid}`;
        inOut = [n?.rxBytes ?? 0, n?.txBytes ?? 0];
        handled = n?.ok === true ? ctx.sBytes : 0;
      }
      const perHandled = handled > 0 ? p.seconds / (handled / GiB) : null;
      const perLink = inOut[0] + inOut[1] > 0 ? p.seconds / ((inOut[0] + inOut[1]) / GiB) : null;
      const peak = r.peakRssMiB?.[p.pid];
      lines.push(`| ${labelOf(r)} | ${name} | ${p.seconds.toFixed(2)} | ${(inOut[0] / GiB).toFixed(2)} / ${(inOut[1] / GiB).toFixed(2)} | ${fmt(perHandled)} | ${fmt(perLink)} | ${peak === undefined ? '–' : peak.toFixed(0)} |`);
    }
  }
  lines.push(
    '',
    '(Handled: the supernode or cache per GiB received from the registry, a node agent per GiB of image delivered to containerd, the registry per GiB sent.)',
    '',
    ...results.map((r) => {
      const s = summarize(r, ctx);
      const served = r.nodes.reduce((a, n) => a + (n.piecesServed ?? 0), 0);
      const relayed = r.nodes.reduce((a, n) => a + (n.piecesRelayed ?? 0), 0);
      const w = r.registryBlobWindow;
      const fetchedP50 = s.fetchP50 === null ? undefined : s.fetchP50 * ctx.lineRateSeconds;
      const timeline =
        w === undefined || fetchedP50 === undefined
          ? ''
          : ` The registry sent blobs from +${w.firstGetS.toFixed(1)} s (first GET) to +${w.lastByteS.toFixed(1)} s (its last byte written)${w.blobs.length === 0 ? '' : `, the layers by first GET: ${describeBlobWindows(w.blobs)}`}; the median node had every layer at +${fetchedP50.toFixed(1)} s, ${(fetchedP50 - w.lastByteS).toFixed(1)} s (${((fetchedP50 - w.lastByteS) / ctx.lineRateSeconds).toFixed(2)} × S/B) after the registry's last byte.`;
      const peerBytes = r.nodes.reduce((a, n) => a + (n.sources?.peer ?? 0), 0);
      const shaped =
        r.mode !== 'shoal' || r.shapedEgressBytes === undefined || peerBytes === 0
          ? ''
          : ` As their shapers count them (every segment's headers), the nodes' uplinks carried ${(r.shapedEgressBytes.nodesTotal / ctx.sBytes).toFixed(2)} × S for the ${(peerBytes / ctx.sBytes).toFixed(2)} × S of pieces their proxies got from peers: ${((1 - peerBytes / tcpGoodput(MTU) / r.shapedEgressBytes.nodesTotal) * 100).toFixed(1)} % of it beyond those pieces' framed bytes (ACKs, requests, control, segments sent again, copies not used); the supernode host's ${(r.shapedEgressBytes.supernodeHost / ctx.sBytes).toFixed(2)} × S.${r.shapedSupernodeHostRx === undefined ? '' : ` Its downlink carried ${(r.shapedSupernodeHostRx.total / ctx.sBytes).toFixed(3)} × S, ${(r.shapedSupernodeHostRx.fromRegistry / ctx.sBytes).toFixed(3)} × S of it from the registry.`}`;
      const tcp =
        r.tcp === undefined
          ? ''
          : ` TCP over the pull (the kernel's counters): the nodes ${describeTcp(r.tcp.nodes)};${r.mode === 'direct' ? '' : ` the ${r.mode === 'cache' ? 'cache' : 'supernode'} host ${describeTcp(r.tcp.supernodeHost)};`} the registry ${describeTcp(r.tcp.registry)}.`;
      return `- ${labelOf(r)}: ${s.rangeResumes} cut bodies (blob GETs containerd resumed with Range)${r.mode === 'shoal' ? `; ${s.nodeRegistryFetches} blob GETs reached the registry from node addresses (${s.nodeRegistryBytesOfS.toFixed(2)} × S), ${r.nodes.reduce((a, n) => a + n.ctrRegistryFetches, 0)} of them containerd's own (it left the mirror); peers sent each other ${served} pieces, ${relayed} of them while they still arrived (cut-through)` : ''}.${timeline}${shaped}${tcp}`;
    }),
  );
  lines.push('', `results: ${file} (service logs: ${ctx.logsDir})`, '');
  return lines.join('\n');
}

/** Bytes containerd got through the proxies that came from the registry, not the swarm. */
function upstreamShare(r: ModeResult): number {
  let upstream = 0;
  let all = 0;
  for (const n of r.nodes) {
    for (const [source, bytes] of Object.entries(n.sources ?? {})) {
      all += bytes;
      if (source === 'upstream') upstream += bytes;
    }
  }
  return all === 0 ? 1 : upstream / all;
}

function shoalUpstreamWarning(r: ModeResult): string[] {
  const share = upstreamShare(r);
  if (share < 0.05) return [];
  return [
    `WARNING: ${(share * 100).toFixed(0)} % of the blob bytes the proxies served came from the registry (proxy fallback), not the swarm:`,
    'these Shoal numbers measure the fallback path. See the fallback reasons above and the service logs.',
    '',
  ];
}

function writeSvg(path: string, ctx: Ctx, results: ModeResult[]): Promise<void> {
  const colors: Record<Mode, string> = { direct: '#9e9e9e', cache: '#f0a030', shoal: '#2a7bd4' };
  const labels: Record<Mode, string> = { direct: 'direct from registry', cache: 'central pull-through cache', shoal: 'Shoal' };
  const first = results[0];
  const svg = barChartSvg({
    title: `Swarm pull: ${NODES} nodes pull one ${(ctx.sBytes / MiB).toFixed(0)} MiB image at once, ${ctx.rateMbit} Mbit/s links`,
    subtitle: `completion time per node (${FETCH_ONLY ? 'ctr content fetch' : 'ctr pull, unpack included'}) in units of S/B = ${ctx.lineRateSeconds.toFixed(1)} s · ${new Date().toISOString().slice(0, 10)}${args.label === undefined || args.label === '' ? '' : ` · ${args.label}`} · × = did not finish`,
    yLabel: 'completion time / (S/B)',
    xLabels: (first?.nodes ?? []).map((n) => n.node),
    series: results.map((r) => ({
      label: r.pull === undefined ? labels[r.mode] : `${labels[r.mode]} #${r.pull}`,
      color: colors[r.mode],
      values: r.nodes.map((n) => (n.ok && n.totalSeconds !== null ? n.totalSeconds / ctx.lineRateSeconds : null)),
    })),
    references: [
      { value: 1, label: '1 × S/B (one node at line rate)' },
      { value: NODES, label: `${NODES} × S/B (N × S through one link)` },
    ],
  });
  return mkdir(dirname(path), { recursive: true }).then(() => writeFile(path, svg));
}

// ---------------------------------------------------------------------------------------

let topology: Topology | undefined;
let workDir: string | undefined;
let cleaning: Promise<void> | undefined;
let interrupted = false;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await stopAllProcesses().catch(() => {});
    if (topology !== undefined) await topology.destroy().catch(() => {});
    // Also whatever containerd temp dirs a killed instance could not remove.
    const removed = await cleanLeftovers(args.keep && workDir !== undefined ? [workDir] : []).catch(() => []);
    if (removed.length > 0) log(`cleaned: ${removed.length} leftover(s)`);
    if (args.keep && workDir !== undefined) log(`kept ${workDir} (removed at the next run)`);
  })();
  return cleaning;
}

function onSignal(signal: NodeJS.Signals): void {
  if (cleaning !== undefined) {
    destroySync();
    process.exit(130);
  }
  interrupted = true;
  log(`${signal}: cleaning up (again to force)`);
  const force = setTimeout(() => {
    destroySync();
    process.exit(130);
  }, 30_000);
  force.unref();
  void cleanup().finally(() => process.exit(130));
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:swarm needs root (network namespaces, tc)');
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo', 'ip', 'tc']);
  if ((await whichTool('curl')) === undefined) throw new Error('curl is required (apt-get install -y curl)');
  if (args['shoal-runtime'] === 'image') {
    shoalRuntime = { kind: 'image', ...(await imageNodeBinary(IMAGE_RUNTIME_CACHE)) };
    log(`Shoal processes on the image's Node.js ${shoalRuntime.version} (${shoalRuntime.path})`);
  }
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.on('exit', () => destroySync(args.keep && workDir !== undefined ? [workDir] : []));
  // A closed stderr (`| head`) must not kill the run half-way: the exit hook would clean up, but the results would be lost.
  process.stderr.on('error', () => {});

  const started = performance.now();
  const runId = new Date().toISOString().replace(/[:.]/g, '-');
  const logsDir = join(RESULTS_DIR, `bench-swarm-${runId}-logs`);
  const leftovers = await cleanLeftovers();
  if (leftovers.length > 0) log(`removed leftovers of an earlier run: ${leftovers.join(', ')}`);

  workDir = await mkdtemp(join(tmpdir(), `${PREFIX}run-`));
  const work = workDir;
  log(`work dir ${work}; building ${PULLS === 1 ? 'a' : `${PULLS} distinct`} ${SIZE_MIB} MiB image${PULLS === 1 ? '' : 's'}`);
  // One image per measured pull, each new to every cache; the first is the single-pull run's image.
  const images = [];
  for (const [k, tag] of TAGS.entries()) {
    images.push(
      await buildImage({
        dir: join(work, `layout-${tag}`),
        tag,
        layers: layerSizes(SIZE_MIB * MiB, LAYERS).map((sizeBytes, i) => ({ sizeBytes, seed: `bench-swarm-${k === 0 ? '' : `pull${k + 1}-`}${SIZE_MIB}-${LAYERS === undefined ? '' : `${LAYERS}x-`}${i}` })),
      }),
    );
  }
  const image = images[0] as (typeof images)[number];
  const sBytes = image.totalBytes;
  // The images differ only in their layers' bytes: their sizes agree to a few hundred bytes, and S is the first's.
  const sizeSpread = Math.max(...images.map((i) => Math.abs(i.totalBytes - sBytes))) / sBytes;
  if (sizeSpread > 0.001) throw new Error(`the measured images differ in size by ${(sizeSpread * 100).toFixed(2)} % (at most 0.1 % expected)`);
  const warmupImage =
    WARMUP_MIB > 0 && MODES.includes('shoal')
      ? await buildImage({
          dir: join(work, 'warmup-layout'),
          tag: WARMUP_TAG,
          layers: layerSizes(WARMUP_MIB * MiB).map((sizeBytes, i) => ({ sizeBytes, seed: `bench-swarm-warmup-${WARMUP_MIB}-${i}` })),
        })
      : undefined;

  const specs = [
    { name: 'reg', octet: 1 },
    { name: 'sn', octet: 2 },
    ...Array.from({ length: NODES }, (_, i) => ({ name: `n${i}`, octet: NODE_OCTET_BASE + i })),
  ];
  const runs: RateRun[] = [];
  const failedModes: Array<{ rateMbit: number; mode: Mode; error: string }> = [];
  let pushed = false;
  for (const rateMbit of RATES) {
    const lineRateSeconds = (sBytes * 8) / (rateMbit * 1e6);
    log(`creating ${specs.length} hosts on a bridge, links shaped to ${rateMbit} Mbit/s, MTU ${MTU}`);
    topology = await createTopology(specs, rateMbit, MTU);
    const topo = topology;
    const cc = args['tcp-cc'];
    if (cc !== undefined && cc !== '') await Promise.all(topo.hosts.map((h) => setCongestionControl(h.ns, cc)));

    log('checking the shaping with TCP flows');
    const shaping = await verifyShaping(topo.host('n0'), topo.host('reg'), topo.host('sn'), rateMbit, {
      fanOut: { from: topo.host('reg'), to: topo.hosts.filter((h) => h.name.startsWith('n')) },
    });
    for (const c of shaping) log(`  ${c.name}: ${c.flows.map((f) => f.mbit.toFixed(0)).join(' + ')} Mbit/s (${(c.totalOfB * 100).toFixed(0)} % of B, fairness ${c.fairness.toFixed(2)}) ${c.ok ? 'ok' : 'FAILED'}; receiver ${(c.bytesPerRead / 1024).toFixed(1)} KiB/read, ${c.receiverCpuSecondsPerGiB.toFixed(1)} CPU-s/GiB; sender ${Number.isNaN(c.senderCpuSecondsPerGiB) ? '–' : c.senderCpuSecondsPerGiB.toFixed(1)} CPU-s/GiB`);
    if (!shaping.every((c) => c.ok)) throw new Error(`the shaping at ${rateMbit} Mbit/s does not behave as the benchmark assumes; not measuring`);
    const freshWrite = await freshFileWriteCpuPerGiB(work, sBytes);
    log(`  writing S to a new file: ${freshWrite.toFixed(2)} CPU-s/GiB (what this machine charges for new page-cache pages)`);
    if (args['shaping-only']) {
      await topo.destroy();
      topology = undefined;
      continue;
    }

    const reg = topo.host('reg');
    // The registry's data dir outlives the LAN: the image is pushed once, at the first rate.
    const origin = await startRegistryIn(reg, join(work, 'registry'), { name: 'registry' });
    if (!pushed) {
      // Pushed over the registry host's own loopback: no link, no shaping, no counters.
      const authDir = await makeTempDir(`${PREFIX}skopeo`);
      try {
        await writeFile(join(authDir, 'auth.json'), '{"auths":{}}\n');
        for (const [layoutDir, tag] of [...images.map((i, k) => [i.layoutDir, TAGS[k] as string] as const), ...(warmupImage === undefined ? [] : [[warmupImage.layoutDir, WARMUP_TAG] as const])]) {
          await runInChecked(
            reg.ns,
            'skopeo',
            ['copy', '--authfile', join(authDir, 'auth.json'), '--dest-tls-verify=false', '--preserve-digests', '--all', `oci:${layoutDir}:${tag}`, `docker://127.0.0.1:${REGISTRY_PORT}/${REPOSITORY}:${tag}`],
            { env: minimalEnv({ HOME: authDir }), timeoutMs: 600_000 },
          );
        }
      } finally {
        await removeTempDir(authDir);
      }
      for (const tag of TAGS) await rm(join(work, `layout-${tag}`), { recursive: true, force: true });
      await rm(join(work, 'warmup-layout'), { recursive: true, force: true });
      pushed = true;
      log(`pushed ${REPOSITORY}:${TAGS.join(', ')}: S = ${(sBytes / MiB).toFixed(1)} MiB in ${image.layers.length} layers`);
    }
    log(`${rateMbit} Mbit/s: S/B = ${lineRateSeconds.toFixed(2)} s`);

    const modeTimeoutSeconds =
      args['mode-timeout-s'] !== undefined ? intFlag('mode-timeout-s', args['mode-timeout-s'], 10, 86_400) : Math.max(300, Math.ceil(2.5 * (NODES + 1) * lineRateSeconds + 60));
    const tcpCongestionControl = await congestionControlIn(topo.host('n0').ns).catch(() => 'unknown');
    const ctx: Ctx = { topo, rateMbit, work, origin, sBytes, lineRateSeconds, modeTimeoutSeconds, logsDir: join(logsDir, `${rateMbit}mbit`), tcpCongestionControl };
    const results: ModeResult[] = [];
    const modes = MODES.filter((m) => m === 'shoal' || BASELINE_RATES.includes(rateMbit));
    for (const mode of modes) {
      const t = performance.now();
      let pulled: ModeResult[];
      try {
        pulled = await runMode(ctx, mode);
      } catch (err) {
        if (interrupted) throw err;
        // One broken mode (a Shoal build that does not start) must not cost the others.
        const error = err instanceof Error ? err.message : String(err);
        log(`${mode}: FAILED, going on with the next mode: ${error}`);
        failedModes.push({ rateMbit, mode, error });
        continue;
      }
      for (const r of pulled) {
        r.modeWallSeconds = (performance.now() - t) / 1000;
        results.push(r);
      }
    }
    await origin.process.stop();
    await keepLogs(ctx.logsDir, [origin]);
    await topo.destroy();
    topology = undefined;
    runs.push({ ctx, shaping, freshWriteCpuPerGiB: freshWrite, results });
  }
  if (args['shaping-only']) return;

  const wallSeconds = (performance.now() - started) / 1000;
  const date = new Date().toISOString();
  await mkdir(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `bench-swarm-${runId}.json`);
  const json = {
    date,
    nodes: NODES,
    mtu: MTU,
    imageBytes: sBytes,
    warmupBytes: warmupImage?.totalBytes ?? 0,
    layers: image.layers.map((l) => l.sizeBytes),
    /** Layers each ctr fetched at once (0: all). */
    maxConcurrentDownloads: MAX_CONCURRENT_DOWNLOADS,
    /** Measured pulls per mode and rate (--pulls): runs[].modes has one entry per pull, `pull` numbering them. */
    pulls: PULLS,
    fetchOnly: FETCH_ONLY,
    /** Shoal mode: the supernode's cache held each measured image before its pull (--preheat). */
    preheat: PREHEAT,
    /** What was written before each measured pull went to disk before it began (no --no-sync). */
    syncBeforePull: SYNC_BEFORE_PULL,
    rates: RATES,
    wallSeconds,
    cores: runs[0]?.results[0]?.cpu.cores,
    shoal: SHOAL_BIN,
    /** The Node.js that ran the Shoal processes (--shoal-runtime). */
    shoalRuntime,
    label: args.label,
    /** The supernode's --chain-members. */
    chainMembers: CHAIN_MEMBERS,
    failedModes,
    runs: runs.map((run) => ({
      rateMbit: run.ctx.rateMbit,
      lineRateSeconds: run.ctx.lineRateSeconds,
      tcpCongestionControl: run.ctx.tcpCongestionControl,
      shaping: run.shaping,
      freshWriteCpuPerGiB: run.freshWriteCpuPerGiB,
      summary: run.results.map((r) => summarize(r, run.ctx)),
      modes: run.results,
    })),
  };
  await writeFile(file, `${JSON.stringify(json, null, 2)}\n`);
  const single = runs.length === 1 ? runs[0] : undefined;
  if (single !== undefined && args.svg !== undefined && args.svg !== '' && single.results.length > 0) {
    await writeSvg(args.svg, single.ctx, single.results);
    log(`plot: ${args.svg}`);
  }
  if (runs.length > 1 && args['sweep-svg'] !== undefined && args['sweep-svg'] !== '') {
    for (const path of await writeSweepSvgs(args['sweep-svg'], runs)) log(`plot: ${path}`);
  }
  for (const run of runs) process.stdout.write(report(run.ctx, run.results, run.shaping, run.freshWriteCpuPerGiB, file, wallSeconds));
  if (runs.length > 1) process.stdout.write(sweepTable(runs));
  for (const f of failedModes) process.stdout.write(`${f.rateMbit} Mbit/s mode ${f.mode} FAILED: ${f.error.split('\n')[0] ?? ''}\n`);
  if (failedModes.length > 0) process.exitCode = 1;
}

interface RateRun {
  ctx: Ctx;
  shaping: ShapingCheck[];
  /** CPU-s per GiB a separate process spent writing S to a new file just after the shaping check. */
  freshWriteCpuPerGiB: number;
  results: ModeResult[];
}

/** One line per (rate, mode): the sweep at a glance. */
function sweepTable(runs: readonly RateRun[]): string {
  const lines = [
    '',
    `Sweep: N = ${NODES}, S = ${((runs[0]?.ctx.sBytes ?? 0) / MiB).toFixed(1)} MiB`,
    '',
    '| rate Mbit/s | mode | nodes ok | p50 × S/B | max × S/B | registry egress × S | supernode host × S | cut bodies | node-side registry fetches | CPU busy | CPU-saturated samples | supernode CPU-s/GiB | node agent CPU-s/GiB (median) | registry CPU-s/GiB sent |',
    '| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const run of runs) {
    for (const r of run.results) {
      const s = summarize(r, run.ctx);
      const c = s.cpuPerGiB;
      lines.push(
        `| ${run.ctx.rateMbit} | ${labelOf(r)} | ${s.ok}/${r.nodes.length} | ${fmt(s.p50)} | ${fmt(s.max)} | ${s.registryOfS.toFixed(2)} | ${s.supernodeHostOfS.toFixed(2)} | ${s.rangeResumes} | ${s.nodeRegistryFetches} | ${(r.cpu.meanBusy * 100).toFixed(0)} % | ${(r.cpu.saturatedShare * 100).toFixed(0)} % | ` +
          `${fmt(c.supernode)} | ${fmt(c.nodeMedian)} | ${fmt(c.registry)} |`,
      );
    }
  }
  lines.push('', '(CPU-s/GiB: a process\'s user + sys CPU-seconds in the pull window per GiB of image it handled: the supernode (or cache) per GiB it received from the registry, a node agent per GiB of image delivered to its containerd, the registry per GiB it sent.)', '');
  return lines.join('\n');
}

/** p50 and max × S/B against the rate, and registry egress against the rate: two SVGs. */
async function writeSweepSvgs(path: string, runs: readonly RateRun[]): Promise<string[]> {
  const colors: Record<Mode, string> = { direct: '#9e9e9e', cache: '#f0a030', shoal: '#2a7bd4' };
  const names: Record<Mode, string> = { direct: 'direct', cache: 'central cache', shoal: 'Shoal' };
  // With several pulls per rate (--pulls), their median.
  const points = (mode: Mode, pick: (s: Summary) => number | null): Array<[number, number]> =>
    runs.flatMap((run) => {
      const values = run.results
        .filter((r) => r.mode === mode)
        .map((r) => pick(summarize(r, run.ctx)))
        .filter((v): v is number => v !== null);
      return values.length === 0 ? [] : [[run.ctx.rateMbit, quantile(values, 0.5)] as [number, number]];
    });
  const present = ALL_MODES.filter((m) => runs.some((run) => run.results.some((r) => r.mode === m)));
  const sBytes = runs[0]?.ctx.sBytes ?? 0;
  const busy = runs.flatMap((run) => run.results.map((r) => r.cpu.meanBusy * 100));
  const busyText = busy.length === 0 ? '' : ` · machine CPU busy ${Math.min(...busy).toFixed(0)}–${Math.max(...busy).toFixed(0)} %`;
  const subtitle = `N = ${NODES} nodes pull one ${(sBytes / MiB).toFixed(0)} MiB image at once · ${new Date().toISOString().slice(0, 10)}${args.label === undefined || args.label === '' ? '' : ` · ${args.label}`}${busyText}`;
  const timeSeries: Series[] = present.flatMap((m) => [
    { name: `${names[m]} p50`, color: colors[m], points: points(m, (s) => s.p50) },
    { name: `${names[m]} max`, color: colors[m], dashed: true, points: points(m, (s) => s.max) },
  ]);
  const egressSeries: Series[] = present.map((m) => ({ name: `${names[m]} registry egress`, color: colors[m], points: points(m, (s) => s.registryOfS) }));
  egressSeries.push({ name: 'Shoal supernode host egress', color: '#2ca02c', dashed: true, points: points('shoal', (s) => s.supernodeHostOfS) });
  const egressPath = path.replace(/(\.svg)?$/, '-egress.svg');
  await mkdir(dirname(path), { recursive: true });
  await writeFile(
    path,
    linePlotSvg({ title: 'Completion time against link rate (p50 solid, max dashed)', subtitle, series: timeSeries, logX: true, xLabel: 'link rate, Mbit/s (every host, both directions)', yLabel: 'completion time / (S/B)', references: [{ value: 1, label: '1 × S/B' }] }),
  );
  await writeFile(
    egressPath,
    linePlotSvg({ title: 'Registry egress against link rate', subtitle, series: egressSeries, logX: true, xLabel: 'link rate, Mbit/s', yLabel: 'bytes sent / S', references: [{ value: 1, label: '1 × S' }] }),
  );
  return [path, egressPath];
}

try {
  await main();
} catch (err) {
  process.exitCode = 1;
  // After SIGINT the namespaces vanish under the running mode: its errors are expected.
  if (!interrupted) log(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
} finally {
  await cleanup();
}
