import { pieceLayout, pieceSpan } from '@shoal/core';
import type { ModelConstants } from './constants.js';
import { EventQueue } from './heap.js';
import { seededRandom } from './rng.js';
import { Scheduler, type SchedulerInit } from './scheduler.js';

/**
 * A discrete-event simulation of N nodes pulling one image (one or more layers) at the
 * same moment, driving the supernode's real Scheduler with simulated peers, links, a
 * supernode and a registry. Every timer and limit comes from the code (constants.ts).
 *
 * Links, as bench:swarm shapes them (load-tests/src/netns/shaping.ts). Every node, the
 * supernode host (the seed) and the registry have an upload and a download capacity
 * (`links`; by default all B), carrying TCP payload at `goodput` of it (headers: 1448
 * payload bytes per 1514-byte frame); a node's or the supernode host's upload link also loses
 * `uplinkOverhead` of itself to what the model does not carry (none unless asked for): the
 * ACKs and requests for what the host receives, and segments sent again after a loss.
 * Each link is shared between the host pairs using it (htb: one class per peer host), not
 * between flows: a pair's share at a link is max-min fair given what the pair can get at
 * its other end (water-filling at each link, with the other end's equal share as the pair's
 * demand), and the pair's rate is the tighter of its two ends. The flows of one pair (one
 * FIFO) share the pair's rate equally. Rates are recomputed for the links a pair's arrival
 * or departure changes (its two ends and the far ends of their pairs), and never
 * over-subscribe a link.
 *
 * Round trips under load. Each pair's FIFO holds `leafQueueBytes` (40 ms at B, at least
 * 256 KiB), which TCP keeps full while the pair is busy: a request (a piece GET, a
 * schedule answer) crossing a busy pair waits leafQueueBytes / the pair's rate, on top of
 * `rttMs`.
 *
 * Sends. The seed sends seedSendsAtOnce pieces at once, a peer peerSendsAtOnce, the rest
 * wait in arrival order (SendSlots); a peer accepts peerMaxUploads requests (sending or
 * waiting) and refuses more ('busy'). A send's slot is freed when its last byte was
 * handed to the socket, i.e. when no more than `socketBufferBytes` are left to cross the
 * link: the rest drains from the kernel's buffer while the next send starts, so more
 * bytes overlap at the wire than the gate's size. A seed send counts as progress for the
 * scheduler's patience (seedProgress, every sendProgressEveryMs) from the moment it is
 * queued until sendDrainProgressMs after its slot was freed.
 *
 * The image. containerd fetches the layers in manifest order, `layerConcurrency` at a time
 * (0: all at once, as `ctr images pull`; the CRI plugin's default is 3), or with
 * `arrivalOrder` 'shuffled' in one random order per run (as the supernode hears of them
 * in bench:swarm, where the nodes' requests for all layers cross within a few hundred
 * ms); each layer is a blob with its own download in the node agent (a window of
 * `pieceWindow` pieces, urgent = its next missing pieces in order) and its own scheduler
 * entry. A node is done when it holds every layer (the harness's "fetch" time;
 * containerd's unpack is not modelled).
 *
 * Schedule calls are long-polls: an answer with nothing in it is held by the supernode
 * until the blob's swarm changes (a piece lands at the seed or is released, a peer
 * announces one — every verified piece is announced at once —, a failure is reported), or
 * scheduleWaitMs; the download then asks again at once. An answer that did not fill the
 * window: the download asks again when a piece lands, or after idlePollMaxMs.
 *
 * The supernode. It starts a layer's back-to-source when the first node asks for it (at
 * most `supernodeMaxConcurrentFetches` at once), piece after piece in order. A piece is
 * offered (seedHas) when it has arrived, unless a frontier claim holds it (then held back
 * until a peer announces it, or claimedPieceSeedDelayMs after its seed copy's last
 * progress). Frontier claims: a child whose answer has room waits at the seed for the next
 * pieces nobody claimed (frontierPerCall per answer, maxFrontierClaimsPerChild live per
 * child, maxFrontierClaimsAlone for a blob's only member asking again, within the
 * arrival-rate horizon past the fill point). A request for a piece the seed lacks is
 * held pieceWaitMs (the piece arriving now: while the layer's fetch moves), then fails
 * 'unreachable'; once the piece begins to arrive, it is passed on as it comes
 * (cut-through, outside the send slots, at most maxCutThroughSends at once; a request
 * past them waits for the whole piece): its bytes cross the link at the pair's rate, and
 * the send ends no sooner than the piece has all arrived.
 *
 * Peers pass a piece on the same way (peerCutThrough): announced when its first byte
 * arrives; a relay's send ends no sooner than its own copy has arrived, and takes none of
 * the peer's send slots (up to relaysAtOnce at once; past them, a slot). Not modelled: a
 * child's limit on its wait for a parent's headers (PEER_HEADERS_TIMEOUT_MS).
 *
 * The chain (the scheduler's chainMembers: `shoal supernode --chain-members`, off by
 * default): the scheduler assigns a swarm's members pieces from the member before them,
 * their requests ahead included; only the chain's head waits at the
 * seed (frontier claims, within its window); every chain member's held call is woken on
 * each change. A request ahead waits at its link until the link's copy begins to arrive,
 * up to relayWaitMaxMs, then fails 'missing' (not counted among the link's uploads while
 * it waits).
 *
 * The proxy. A layer is fetched whole from the registry (registry egress beyond S; a
 * "fallback") when its node has made no progress for firstByteTimeoutMs: no byte of any of
 * the node's layers arrived (Peer.progressAt: a layer waiting its turn behind the image's
 * other layers shares the node's link, it is slow, not dead), and the layer is not queued
 * at the supernode behind fetches that move. Its swarm download
 * stops asking, what it has it still serves. Not modelled: CPU (hashing, the event loops
 * of the node agents and the supernode), containerd's unpack and the harness's start-up
 * (manifest, task creation), the proxy's body cuts.
 *
 * Length: this file is over 600 lines because `simulate` is one event loop whose handlers
 * share the state of one run through closures; split apart, each would take that whole
 * state as an argument. Its helpers stand alone in heap.ts, rng.ts, constants.ts and svg.ts.
 */
export interface SimParams {
  nodes: number;
  /** Layer sizes in bytes, manifest order. */
  layerBytes: number[];
  /** B: the default of every link. */
  rateBitsPerSec: number;
  /** Per-host capacities, bits/s; each defaults to B. */
  links?: Partial<Record<'nodeUp' | 'nodeDown' | 'seedUp' | 'seedDown' | 'registryUp', number>>;
  rttMs: number;
  /** TCP payload per byte of link capacity. @default TCP_GOODPUT */
  goodput?: number;
  /**
   * Share of a node's and the supernode host's upload link taken, for the whole run, by
   * what the model does not carry: TCP's ACKs and the requests for what the host
   * receives, and segments sent again after a loss (bench:swarm's shaper counts about 0.026).
   * The registry only sends. @default 0
   */
  uplinkOverhead?: number;
  /** A sender's kernel buffer per connection: a send's slot frees when this much is left. @default socketBufferFor(B) */
  socketBufferBytes?: number;
  /** Each pair's FIFO at a shaped link. @default leafQueueFor(B) */
  leafQueueBytes?: number;
  /** Layers containerd fetches at once (0: all, as `ctr images pull` by default; 3 is the CRI plugin's default). @default 0 */
  layerConcurrency?: number;
  /** The order every node asks for the layers in: the manifest's, or one random order per run (bench:swarm's nodes ask for all at once, and the supernode hears of them in no fixed order). @default 'manifest' */
  arrivalOrder?: 'manifest' | 'shuffled';
  /** When the nodes' containerds ask for the layers (bench:swarm's sixteen pulls reach the supernode 0.2–1.1 s after they start, on two cores). Milliseconds. @default 0 */
  nodeStartMs?: number;
  /** When the supernode begins every layer's back-to-source on the manifest's word, in the manifest's order, before any node asks for them; undefined: only when a node asks. Milliseconds. */
  manifestPrefetchMs?: number;
  /**
   * The supernode's cache holds the image when the nodes ask (after `shoal preheat`, or an
   * earlier wave of nodes): it is fetched first, the nodes start once it is whole, and their
   * completion times count from then. @default false
   */
  preheated?: boolean;
  seed: number;
  scheduler: SchedulerInit;
  constants: ModelConstants;
  /** The supernode's frontier long-poll (the code has it). @default true */
  frontier?: boolean;
  /** The proxy's no-progress fallback (the code has it). @default true */
  proxyFallback?: boolean;
  /** The seed's cut-through: a piece requested while it arrives is passed on as it comes (the code has it). @default true */
  cutThrough?: boolean;
  /** Peers pass a piece on while it arrives (announced when its first byte comes; a relay's send ends no sooner than its own copy has arrived); the code has it. @default true */
  peerCutThrough?: boolean;
  /**
   * A cut-through send (the seed's, a relay's) moves no faster than its piece arrives where
   * it is sent from: its rate is capped at that of the flow bringing the piece there, until
   * that flow ends (the cap is taken into each link's max-min share, so the rest of the
   * link goes to other pairs). Without it a cut-through send crosses at its pair's rate
   * and is then held open until the piece has arrived. @default false
   */
  pacedCutThrough?: boolean;
  /**
   * What if each layer's nodes formed a chain (not in the code): the nodes in a ring, each
   * layer's chain starting at another node; its first takes the pieces in order from the
   * supernode, every other from the node before it, at most `window` in flight, each passed
   * on while it arrives. `hopMs`: how long after a piece begins to arrive at a node the next
   * node's request for it can start (its announcement, the schedule answer and the request
   * crossing loaded links). undefined: the scheduler's swarm, as in the code.
   */
  chain?: { window: number; hopMs: number };
  /** Print a line of swarm state every this fraction of S/B (0: never). */
  traceEvery?: number;
}

/** TCP payload per byte a shaper counts at a link MTU: MTU − 52 bytes (IP and TCP headers with timestamps) per MTU + 14-byte Ethernet frame. */
export function tcpGoodput(mtu: number): number {
  return (mtu - 52) / (mtu + 14);
}
/** TCP payload per byte a shaper counts at Ethernet's MTU: 1448 bytes (MSS with timestamps) per 1514-byte frame. */
export const TCP_GOODPUT = tcpGoodput(1500);
/** bench:swarm's leaf FIFO per peer class (netns/shaping.ts): 40 ms at B, at least 256 KiB. */
export function leafQueueFor(rateBitsPerSec: number): number {
  return Math.max(256 * 1024, Math.round((rateBitsPerSec * 40) / 8000));
}
/**
 * A busy connection's kernel send buffer: Linux grows it to about twice the congestion
 * window (tcp_sndbuf_expand), and the window of a flow through a shaped FIFO grows to the
 * FIFO's length before a drop halves it.
 */
export function socketBufferFor(rateBitsPerSec: number): number {
  return 2 * leafQueueFor(rateBitsPerSec);
}

export interface SimResult {
  params: SimParams;
  sizeBytes: number;
  pieceCount: number;
  /** S/B in ms: one node's time on its own link at the nominal rate B (as bench:swarm's S/B). */
  lineRateMs: number;
  /** Each node's completion time (ms), ascending. */
  completionMs: Float64Array;
  registryEgressBytes: number;
  /** Of registryEgressBytes, what went to nodes (proxy fallbacks). */
  registryToNodesBytes: number;
  /** When the supernode began each layer's back-to-source (ms; by manifest index). */
  layerFetchStartMs: number[];
  fallbacks: number;
  seedEgressBytes: number;
  peerEgressBytes: number;
  /** With pacedCutThrough: sends of a piece still arriving that caught up with it and moved at its pace. */
  pacedSends: number;
  events: number;
  /** Schedule calls the downloads made (requests to the supernode). */
  scheduleCalls: number;
  /** Scheduler runs for held calls woken by a change (the supernode's work, not requests). */
  heldReruns: number;
  busyRefusals: number;
  longPollTimeouts: number;
  /** A chain's requests ahead that waited their longest at a link (RELAY_WAIT_MAX_MS) and were answered 'missing'. */
  aheadMisses: number;
  ignoredAssignments: number;
  frontierClaims: number;
  heldBack: number;
  schedulerMs: number;
  wallMs: number;
}

// Event kinds.
const POLL = 1;
const START = 2;
const FLOW = 3;
const RELEASE = 4;
const PROGRESS_CHECK = 5;
const LONG_POLL_TIMEOUT = 6;
const HOLD_TIMEOUT = 7;
const WAKE = 8;
const SEND_TICK = 9;
const ALONE_CHECK = 10;
const NODES_START = 11;
const MANIFEST_PREFETCH = 12;
const CATCH_UP = 13;
const AHEAD_TIMEOUT = 14;
/** Paced cut-through: a send this close behind its source has caught up (bytes). */
const CATCH_UP_BYTES = 1024;
/** How soon a send catching up is looked at again at the soonest, and while it gains nothing (ms). */
const CATCH_UP_CHECK_MIN_MS = 2;
const CATCH_UP_CHECK_IDLE_MS = 50;
// Flow kinds.
const PIECE = 0;
const FEED = 1;
const FALLBACK = 2;
const BUSY = 0;
const UNREACHABLE = 1;
const MISSING = 2;

export function simulate(params: SimParams): SimResult {
  const wallStart = performance.now();
  const k = params.constants;
  const { nodes: N, rttMs } = params;
  const W = k.pieceWindow;
  const L = params.layerBytes.length;
  const frontierOn = params.frontier ?? true;
  const fallbackOn = params.proxyFallback ?? true;
  const cutThroughOn = params.cutThrough ?? true;
  const peerCutOn = params.peerCutThrough ?? true;
  const pacedOn = params.pacedCutThrough ?? false;
  const goodput = params.goodput ?? TCP_GOODPUT;
  const sndbuf = params.socketBufferBytes ?? socketBufferFor(params.rateBitsPerSec);
  const leafQueue = params.leafQueueBytes ?? leafQueueFor(params.rateBitsPerSec);
  const layouts = params.layerBytes.map((b) => pieceLayout(b));
  const offset: number[] = [];
  let P = 0;
  for (const l of layouts) {
    offset.push(P);
    P += l.pieceCount;
  }
  const layerOf = new Int32Array(P);
  const pieceLen = new Float64Array(P);
  layouts.forEach((l, layer) => {
    for (let i = 0; i < l.pieceCount; i++) {
      layerOf[(offset[layer] as number) + i] = layer;
      pieceLen[(offset[layer] as number) + i] = pieceSpan(l, i).length;
    }
  });
  const S = params.layerBytes.reduce((a, b) => a + b, 0);
  const nominal = (bits: number | undefined): number => (bits ?? params.rateBitsPerSec) / 8 / 1000;
  const bpms = (bits: number | undefined): number => nominal(bits) * goodput;
  const SEED = N;
  const REG = N + 1;
  const H = N + 2;
  const uplinkOverhead = params.uplinkOverhead ?? 0;
  if (!(uplinkOverhead >= 0 && uplinkOverhead < 1)) throw new RangeError(`uplinkOverhead must be in [0, 1), got ${uplinkOverhead}`);
  const upCap = new Float64Array(H).fill(bpms(params.links?.nodeUp) * (1 - uplinkOverhead));
  const downCap = new Float64Array(H).fill(bpms(params.links?.nodeDown));
  upCap[SEED] = bpms(params.links?.seedUp) * (1 - uplinkOverhead);
  downCap[SEED] = bpms(params.links?.seedDown);
  upCap[REG] = bpms(params.links?.registryUp);
  downCap[REG] = 0;
  const lineRateMs = S / Math.min(nominal(params.links?.nodeDown), nominal(params.links?.registryUp));
  const horizonMs = Math.max(200 * lineRateMs, 10 * 60_000);

  let now = 0;
  const random = seededRandom(params.seed);
  const sched = new Scheduler({ clock: { now: () => now }, random }, params.scheduler);
  const ids = Array.from({ length: N }, (_, i) => `node-${i}`);
  const indexOf = new Map(ids.map((id, i) => [id, i]));
  for (const id of ids) sched.addPeer({ peerId: id, url: `sim://${id}` });
  const digests = params.layerBytes.map((_, layer) => `sha256:${layer.toString(16).padStart(64, '5')}`);
  layouts.forEach((l, layer) => sched.addBlob(digests[layer] as string, l.pieceCount));

  // Per node × piece.
  const have = new Uint8Array(N * P);
  const asked = new Uint8Array(N * P);
  // Per download (node × layer).
  const D = N * L;
  const dlDone = new Uint8Array(D);
  const dlFallback = new Uint8Array(D);
  const dlHave = new Int32Array(D);
  const dlInflight = new Int32Array(D);
  const dlFlowing = new Int32Array(D);
  const dlNext = new Int32Array(D);
  const dlPollVer = new Int32Array(D);
  const dlIdleMs = new Float64Array(D).fill(k.idlePollMinMs);
  const dlWaiting = new Uint8Array(D);
  const dlHoldUntil = new Float64Array(D);
  const dlHoldVer = new Int32Array(D);
  const dlLastProgress = new Float64Array(D);
  const dlFailures: Array<number[] | undefined> = new Array<number[] | undefined>(D);
  // Per node.
  const nextLayer = new Int32Array(N);
  /** The order every node asks for the layers in (see arrivalOrder). */
  const layerOrder = Array.from({ length: params.layerBytes.length }, (_, i) => i);
  if (params.arrivalOrder === 'shuffled') {
    // Its own stream: the scheduler's random draws stay as they are.
    const shuffle = seededRandom(params.seed + 0x5eed);
    for (let i = layerOrder.length - 1; i > 0; i--) {
      const j = Math.floor(shuffle() * (i + 1));
      [layerOrder[i], layerOrder[j]] = [layerOrder[j] as number, layerOrder[i] as number];
    }
  }
  const layersDone = new Int32Array(N);
  /** When the nodes began (completion times count from it when preheated; -1 before). */
  let nodesStartedAt = -1;
  const doneAt = new Float64Array(N).fill(-1);
  const nodeClaims: number[][] = Array.from({ length: N }, () => []);
  const peerAccepted = new Int32Array(N);
  const peerSending = new Int32Array(N);
  const peerQueue: number[][] = Array.from({ length: N }, () => []);
  // Per layer.
  const seedFill = new Int32Array(L); // pieces of the layer arrived, in order
  const feedState = new Uint8Array(L); // 0 not asked, 1 queued, 2 fetching
  const feedStartedAt = new Float64Array(L).fill(-1);
  const firstArrival = new Float64Array(L).fill(-1);
  const frontierLive = new Uint8Array(L).fill(1);
  const waiters: number[][] = Array.from({ length: L }, () => []);
  const chainWaiters: number[][] = Array.from({ length: L }, () => []);
  const wakePending = new Uint8Array(L);
  /** Held calls the changes of this instant may wake (k.wakesPerChange each). */
  const wakeBudget = new Float64Array(L);
  const feedQueue: number[] = [];
  let feedsRunning = 0;
  // Per piece, at the seed.
  const seedHasPiece = new Uint8Array(P);
  const claimBy = new Int32Array(P).fill(-1);
  const claimUntil = new Float64Array(P);
  const claimSince = new Float64Array(P);
  const heldBack = new Uint8Array(P);
  const heldProgress = new Float64Array(P);
  const waitingAtSeed: Array<number[] | undefined> = new Array<number[] | undefined>(P);
  /** Pieces arriving at the seed now (cut-through may pass them on), and cut-through sends whose bytes are out but whose piece has not all arrived. */
  const feeding = new Uint8Array(P);
  /** Paced cut-through: the flow bringing piece g to the seed, and each node's flow bringing it piece g (child × P + g). */
  const feedFlow = new Int32Array(P).fill(-1);
  const inFlow = new Int32Array(pacedOn ? N * P : 0).fill(-1);
  const cutWaiting: Array<number[] | undefined> = new Array<number[] | undefined>(P);
  const cutFlows = new Set<number>();
  /** Peer cut-through: pieces a node is receiving (announced early), sends relayed from them, and relayed sends whose bytes are out but whose relay's copy has not arrived. */
  const arrivingAt = new Uint8Array(N * P);
  const relayed = new Set<number>();
  /** Relayed sends outside the parent's send slots (at most relaysAtOnce per parent), and how many each parent has. */
  const slotless = new Set<number>();
  const peerRelays = new Int32Array(N);
  const relayWaiting = new Map<number, number[]>();
  /** node × P + piece → a chain's requests ahead waiting at that node for its copy of the piece to begin (routes/blobs.ts arrivingPiece). */
  const aheadWaiting = new Map<number, number[]>();
  /** The supernode's chain (SchedulerInit.chainMembers): its members' held calls are all woken on each change, and only its head waits at the seed. */
  const chainOn = (params.scheduler.chainMembers ?? 0) > 0;
  // The seed's sends: waiting their turn, open (slot held), draining (still progress).
  const seedQueue: number[] = [];
  let seedQueueHead = 0;
  let seedSending = 0;
  const seedOpen = new Map<number, number>(); // flow → piece, queued or holding a slot
  let draining: Array<{ g: number; untilMs: number }> = [];
  let tickArmed = false;

  // Flows (pooled typed arrays).
  let cap = 1 << 14;
  let fKind = new Uint8Array(cap);
  let fParent = new Int32Array(cap);
  let fChild = new Int32Array(cap);
  let fPiece = new Int32Array(cap);
  let fPair = new Int32Array(cap);
  let fCandPos = new Int32Array(cap);
  let fVer = new Int32Array(cap);
  let fRem = new Float64Array(cap);
  let fMark = new Float64Array(cap);
  let fRate = new Float64Array(cap);
  let fLast = new Float64Array(cap);
  /** Paced cut-through: the most this flow may get (its source flow's rate), and that source (-1: none). */
  let fCap = new Float64Array(cap).fill(Number.POSITIVE_INFINITY);
  let fSrc = new Int32Array(cap).fill(-1);
  const fCands: Int32Array[] = [];
  const free: number[] = [];
  let used = 0;
  const grow = <T extends Uint8Array | Int32Array | Float64Array>(a: T, make: (n: number) => T): T => {
    const b = make(cap);
    b.set(a);
    return b;
  };
  const alloc = (): number => {
    const t = free.pop();
    if (t !== undefined) return t;
    if (used === cap) {
      cap *= 2;
      fKind = grow(fKind, (n) => new Uint8Array(n));
      fParent = grow(fParent, (n) => new Int32Array(n));
      fChild = grow(fChild, (n) => new Int32Array(n));
      fPiece = grow(fPiece, (n) => new Int32Array(n));
      fPair = grow(fPair, (n) => new Int32Array(n));
      fCandPos = grow(fCandPos, (n) => new Int32Array(n));
      fVer = grow(fVer, (n) => new Int32Array(n));
      fRem = grow(fRem, (n) => new Float64Array(n));
      fMark = grow(fMark, (n) => new Float64Array(n));
      fRate = grow(fRate, (n) => new Float64Array(n));
      fLast = grow(fLast, (n) => new Float64Array(n));
      const oldCap = fCap.length;
      fCap = grow(fCap, (n) => new Float64Array(n));
      fCap.fill(Number.POSITIVE_INFINITY, oldCap);
      fSrc = grow(fSrc, (n) => new Int32Array(n));
      fSrc.fill(-1, oldCap);
    }
    return used++;
  };

  // Host pairs (one htb class each way): flows parent → child.
  const pairOf = new Map<number, number>();
  const pParent: number[] = [];
  const pChild: number[] = [];
  const pFlows: number[][] = [];
  const pRate: number[] = [];
  const pStamp: number[] = [];
  const pFree: number[] = [];
  const upPairs: number[][] = Array.from({ length: H }, () => []);
  const downPairs: number[][] = Array.from({ length: H }, () => []);
  const upLevel = new Float64Array(H).fill(Number.POSITIVE_INFINITY);
  const downLevel = new Float64Array(H).fill(Number.POSITIVE_INFINITY);
  let stamp = 0;

  const queue = new EventQueue();
  const ev = { time: 0, kind: 0, id: 0, version: 0 };
  let events = 0;
  let scheduleCalls = 0;
  let heldReruns = 0;
  let inWake = false;
  let busyRefusals = 0;
  let longPollTimeouts = 0;
  let aheadMisses = 0;
  let ignoredAssignments = 0;
  let frontierClaims = 0;
  let heldBackCount = 0;
  let registryEgressBytes = 0;
  let registryToNodesBytes = 0;
  let fallbacks = 0;
  let seedEgressBytes = 0;
  let peerEgressBytes = 0;
  let schedulerMs = 0;
  let done = 0;
  const urgentBuf: number[] = [];
  const timed = <T>(f: () => T): T => {
    const t0 = performance.now();
    try {
      return f();
    } finally {
      schedulerMs += performance.now() - t0;
    }
  };

  // --- links --------------------------------------------------------------------------
  const bump = (t: number): number => (fVer[t] = (fVer[t] as number) + 1);
  const removeFrom = (list: number[], t: number): void => {
    const i = list.indexOf(t);
    if (i < 0) return;
    list[i] = list[list.length - 1] as number;
    list.pop();
  };
  const eqUp = (h: number): number => (upCap[h] as number) / Math.max(1, (upPairs[h] as number[]).length);
  const eqDown = (h: number): number => (downCap[h] as number) / Math.max(1, (downPairs[h] as number[]).length);
  const scratch: number[] = [];
  /** Max-min level of a link of `capacity` over pairs that can take at most `demands` each. */
  const waterLevel = (capacity: number): number => {
    scratch.sort((a, b) => a - b);
    let left = capacity;
    for (let i = 0; i < scratch.length; i++) {
      const share = left / (scratch.length - i);
      const d = scratch[i] as number;
      if (d >= share) return share;
      left -= d;
    }
    return Number.POSITIVE_INFINITY;
  };
  /** The most a pair's flows can take at once: unbounded unless every one is a paced cut-through send. */
  const pairCap = (q: number): number => {
    if (!pacedOn) return Number.POSITIVE_INFINITY;
    let sum = 0;
    for (const t of pFlows[q] as number[]) sum += fCap[t] as number;
    return sum;
  };
  const levelUp = (h: number): void => {
    scratch.length = 0;
    for (const q of upPairs[h] as number[]) scratch.push(Math.min(eqDown(pChild[q] as number), pairCap(q)));
    upLevel[h] = waterLevel(upCap[h] as number);
  };
  const levelDown = (h: number): void => {
    scratch.length = 0;
    for (const q of downPairs[h] as number[]) scratch.push(Math.min(eqUp(pParent[q] as number), pairCap(q)));
    downLevel[h] = waterLevel(downCap[h] as number);
  };
  /** Whether flow t is moving bytes (started, not yet ended). */
  const flowActive = (t: number): boolean => (pFlows[fPair[t] as number] as number[] | undefined)?.includes(t) ?? false;
  /** Paced cut-through: flows whose source's rate changed, and the sends each source feeds. */
  const capDirty: number[] = [];
  const dependents = new Map<number, number[]>();
  let recapping = false;
  let pacedSends = 0;
  const setFlowRate = (t: number, rate: number): void => {
    const old = fRate[t] as number;
    if (rate === old) return;
    fRem[t] = (fRem[t] as number) - old * (now - (fLast[t] as number));
    fLast[t] = now;
    fRate[t] = rate;
    // Faster: re-time the next mark. Slower: the pending event fires early and re-times itself.
    if (rate > old) queue.push(now + Math.max(0, (fRem[t] as number) - (fMark[t] as number)) / rate, FLOW, t, bump(t));
    const fed = dependents.get(t);
    if (fed !== undefined) {
      for (const d of fed) {
        fCap[d] = rate;
        capDirty.push(d);
      }
    }
  };
  const ratePair = (q: number): void => {
    const p = pParent[q] as number;
    const c = pChild[q] as number;
    const rate = Math.min(upLevel[p] as number, eqDown(c), downLevel[c] as number, eqUp(p), pairCap(q));
    pRate[q] = rate;
    const flows = pFlows[q] as number[];
    if (!pacedOn) {
      for (const t of flows) setFlowRate(t, rate / flows.length);
      return;
    }
    // Equal shares, except that a paced send takes no more than its cap.
    const order = [...flows].sort((a, b) => (fCap[a] as number) - (fCap[b] as number));
    let left = rate;
    for (const [i, t] of order.entries()) {
      const r = Math.min(fCap[t] as number, left / (order.length - i));
      left -= r;
      setFlowRate(t, r);
    }
  };
  /** Re-rates the pairs of sends whose cap changed, until no cap changes (bounded: a cycle of links settles approximately). */
  const recap = (): void => {
    if (recapping) return;
    recapping = true;
    for (let round = 0; capDirty.length > 0 && round < 64; round++) {
      const pairs = new Set<number>();
      for (const d of capDirty.splice(0)) pairs.add(fPair[d] as number);
      for (const q of pairs) relinkPair(q);
    }
    capDirty.length = 0;
    recapping = false;
  };
  const touched: number[] = [];
  const touch = (list: number[]): void => {
    for (const q of list) {
      if (pStamp[q] === stamp) continue;
      pStamp[q] = stamp;
      touched.push(q);
    }
  };
  /** A pair came or went between p and c: the levels it changes, then the rates. */
  function relinkPair(q: number): void {
    if (pairOf.get((pParent[q] as number) * H + (pChild[q] as number)) !== q) return;
    relink(pParent[q] as number, pChild[q] as number);
  }
  const relink = (p: number, c: number): void => {
    stamp++;
    touched.length = 0;
    levelUp(p);
    levelDown(c);
    touch(upPairs[p] as number[]);
    touch(downPairs[c] as number[]);
    for (const q of upPairs[p] as number[]) {
      const cc = pChild[q] as number;
      levelDown(cc);
      touch(downPairs[cc] as number[]);
    }
    for (const q of downPairs[c] as number[]) {
      const pp = pParent[q] as number;
      levelUp(pp);
      touch(upPairs[pp] as number[]);
    }
    for (const q of touched) ratePair(q);
  };
  /** Queueing delay a small message meets crossing p → c: the pair's FIFO, full while it is busy. */
  const queueDelay = (p: number, c: number): number => {
    const q = pairOf.get(p * H + c);
    return q === undefined ? 0 : leafQueue / (pRate[q] as number);
  };
  /** Flow t starts: `bytes` from parent to child; its first event when `mark` bytes are left. */
  const startFlow = (t: number, parent: number, child: number, bytes: number, mark: number): void => {
    fParent[t] = parent;
    fChild[t] = child;
    fRem[t] = bytes;
    fMark[t] = Math.min(mark, bytes);
    fRate[t] = 0;
    fLast[t] = now;
    const key = parent * H + child;
    let q = pairOf.get(key);
    if (q === undefined) {
      q = pFree.pop() ?? pParent.length;
      pParent[q] = parent;
      pChild[q] = child;
      pFlows[q] = [t];
      pRate[q] = 0;
      pStamp[q] = 0;
      pairOf.set(key, q);
      (upPairs[parent] as number[]).push(q);
      (downPairs[child] as number[]).push(q);
      fPair[t] = q;
      relink(parent, child);
    } else {
      (pFlows[q] as number[]).push(t);
      fPair[t] = q;
      // A capped send joining a pair changes what the pair asks of its links.
      if (pacedOn) relink(parent, child);
      else ratePair(q);
    }
    recap();
  };
  const endFlow = (t: number): void => {
    bump(t);
    unpace(t);
    const q = fPair[t] as number;
    const flows = pFlows[q] as number[];
    removeFrom(flows, t);
    if (flows.length > 0) {
      if (pacedOn) relink(pParent[q] as number, pChild[q] as number);
      else ratePair(q);
      recap();
      return;
    }
    const parent = pParent[q] as number;
    const child = pChild[q] as number;
    pairOf.delete(parent * H + child);
    removeFrom(upPairs[parent] as number[], q);
    removeFrom(downPairs[child] as number[], q);
    pFree.push(q);
    relink(parent, child);
    recap();
  };
  /** Bytes of flow t through so far. */
  const flowDone = (t: number): number => (pieceLen[fPiece[t] as number] as number) - ((fRem[t] as number) - (fRate[t] as number) * (now - (fLast[t] as number)));
  /** Paced sends still behind their source: they go at their pair's rate until they have caught up (CATCH_UP). */
  const behind = new Map<number, number>();
  /** Send t, just started from a piece still arriving by flow src: capped once it has caught up with src. */
  const paceLater = (t: number, src: number): void => {
    // A source whose bytes are all through (a send held open for its piece's arrival) paces nothing.
    if (!pacedOn || src < 0 || !flowActive(src)) return;
    behind.set(t, src);
    catchUp(t);
  };
  const catchUp = (t: number): void => {
    const src = behind.get(t);
    if (src === undefined) return;
    if (!flowActive(src) || !flowActive(t)) {
      behind.delete(t);
      return;
    }
    const lead = flowDone(src) - flowDone(t);
    if (lead <= CATCH_UP_BYTES) {
      behind.delete(t);
      pace(t, src);
      capDirty.push(t);
      recap();
      return;
    }
    const gain = (fRate[t] as number) - (fRate[src] as number);
    queue.push(now + (gain > 0 ? Math.max(CATCH_UP_CHECK_MIN_MS, lead / gain) : CATCH_UP_CHECK_IDLE_MS), CATCH_UP, t, 0);
  };
  /** Send t, caught up with its source flow src (which catchUp found moving): from now on no faster than src brings the piece. */
  const pace = (t: number, src: number): void => {
    fSrc[t] = src;
    fCap[t] = fRate[src] as number;
    pacedSends++;
    let fed = dependents.get(src);
    if (fed === undefined) dependents.set(src, (fed = []));
    fed.push(t);
  };
  /** Flow t's bytes are all through: the sends it fed go at their pairs' rate; it no longer follows its own source. */
  const unpace = (t: number): void => {
    if (!pacedOn) return;
    behind.delete(t);
    const src = fSrc[t] as number;
    if (src >= 0) {
      const fed = dependents.get(src);
      if (fed !== undefined) removeFrom(fed, t);
      fSrc[t] = -1;
    }
    fCap[t] = Number.POSITIVE_INFINITY;
    const fed = dependents.get(t);
    if (fed === undefined) return;
    dependents.delete(t);
    for (const d of fed) {
      fSrc[d] = -1;
      fCap[d] = Number.POSITIVE_INFINITY;
      capDirty.push(d);
    }
  };

  // --- the supernode's back-to-source -------------------------------------------------
  const feedNext = (layer: number): void => {
    const i = seedFill[layer] as number;
    const l = layouts[layer];
    if (l === undefined || i >= l.pieceCount) {
      feedsRunning--;
      const q = feedQueue.shift();
      if (q !== undefined) startFeed(q);
      else if (feedsRunning === 0 && params.preheated === true && nodesStartedAt < 0) queue.push(now, NODES_START, 0, 0);
      return;
    }
    const t = alloc();
    const g = (offset[layer] as number) + i;
    fKind[t] = FEED;
    fPiece[t] = g;
    feedFlow[g] = t;
    startFlow(t, REG, SEED, pieceLen[g] as number, 0);
    if (!cutThroughOn) return;
    // Its first bytes are here: requests waiting for it are passed them as they come.
    feeding[g] = 1;
    const waiting = waitingAtSeed[g];
    if (waiting === undefined) return;
    waitingAtSeed[g] = undefined;
    const later: number[] = [];
    for (const w of waiting) {
      if (cutFlows.size >= k.maxCutThroughSends) {
        later.push(w); // waits for the whole piece
        continue;
      }
      bump(w); // its long-poll timeout is void
      cutThrough(w);
    }
    if (later.length > 0) waitingAtSeed[g] = later;
  };
  const startFeed = (layer: number): void => {
    feedStartedAt[layer] = now;
    feedState[layer] = 2;
    feedsRunning++;
    feedNext(layer);
  };
  const askFeed = (layer: number): void => {
    if (feedState[layer] !== 0) return;
    feedState[layer] = 1;
    if (feedsRunning < k.supernodeMaxConcurrentFetches) startFeed(layer);
    else feedQueue.push(layer);
  };
  /** Swarm.changed: the oldest held schedule calls of the layer look again (k.wakesPerChange per change, run once per instant). */
  const changed = (layer: number): void => {
    wakeBudget[layer] = (wakeBudget[layer] as number) + k.wakesPerChange;
    if ((wakePending[layer] as number) === 1) return;
    wakePending[layer] = 1;
    queue.push(now, WAKE, layer, 0);
  };
  /** Piece g is the one arriving at the seed now, and its layer's fetch moves (here a running feed always does). */
  const arrivingAtSeed = (g: number): boolean => {
    const layer = layerOf[g] as number;
    return (feedState[layer] as number) === 2 && (seedFill[layer] as number) === g - (offset[layer] as number);
  };
  /** The claim on the piece arriving now lasts while the layer's fetch moves, as the seed's hold on its request does (Swarm.extendArrivingClaim). */
  const extendArrivingClaim = (g: number): void => {
    if (arrivingAtSeed(g)) claimUntil[g] = Math.max(claimUntil[g] as number, now + k.frontierTtlMs);
  };
  const claimLive = (g: number): boolean => (claimBy[g] as number) !== -1 && (claimUntil[g] as number) > now && (frontierLive[layerOf[g] as number] as number) === 1;
  /** A piece reached the seed: offered now, or held back for its claimer; requests waiting for it queue for a send. */
  /**
   * A cut-through send (routes/blobs.ts): piece g passed on while it arrives, outside the
   * send slots. Its bytes cross the link at the pair's rate, but it ends no sooner than
   * the piece has arrived (finish defers it until then).
   */
  const cutThrough = (t: number): void => {
    const g = fPiece[t] as number;
    cutFlows.add(t);
    seedOpen.set(t, g);
    seedProgress(g);
    armTick();
    const d = (fChild[t] as number) * L + (layerOf[g] as number);
    dlFlowing[d] = (dlFlowing[d] as number) + 1;
    if (pacedOn) inFlow[(fChild[t] as number) * P + g] = t;
    startFlow(t, SEED, fChild[t] as number, pieceLen[g] as number, 0);
    paceLater(t, feedFlow[g] as number);
    announceArriving(t);
  };
  const announceArriving = (t: number): void => {
    if (chainSince !== undefined) chainSince[(fChild[t] as number) * P + (fPiece[t] as number)] = now;
    if (!peerCutOn) return;
    const child = fChild[t] as number;
    const g = fPiece[t] as number;
    const layer = layerOf[g] as number;
    arrivingAt[child * P + g] = 1;
    timed(() => sched.peerArriving(ids[child] as string, digests[layer] as string, [g - (offset[layer] as number)]));
    changed(layer);
    chainWakeNext(child, layer);
    resumeAhead(child * P + g);
  };
  /** A node's copy of a piece began to arrive (or arrived): the requests ahead waiting there for it go on. */
  const resumeAhead = (pg: number): void => {
    const waiting = aheadWaiting.get(pg);
    if (waiting === undefined) return;
    aheadWaiting.delete(pg);
    for (const t of waiting) {
      bump(t);
      start(t);
    }
  };
  /** A request ahead waited its longest (RELAY_WAIT_MAX_MS): 'missing', and the child tries its next candidate. */
  const aheadTimeout = (t: number): void => {
    const parent = fParent[t] as number;
    const g = fPiece[t] as number;
    const layer = layerOf[g] as number;
    const waiting = aheadWaiting.get(parent * P + g);
    if (waiting !== undefined) removeFrom(waiting, t);
    aheadMisses++;
    const d = (fChild[t] as number) * L + layer;
    (dlFailures[d] ??= []).push(parent, g - (offset[layer] as number), MISSING);
    nextCandidate(t, d);
  };
  const seedPiece = (g: number): void => {
    seedHasPiece[g] = 1;
    const layer = layerOf[g] as number;
    // It was the piece arriving, until now.
    if ((claimBy[g] as number) !== -1) extendArrivingClaim(g);
    seedFill[layer] = (seedFill[layer] as number) + 1;
    if ((firstArrival[layer] as number) < 0) firstArrival[layer] = now;
    if (frontierOn && claimLive(g)) {
      heldBack[g] = 1;
      heldProgress[g] = now;
      heldBackCount++;
      queue.push(now + k.claimedPieceSeedDelayMs, RELEASE, g, 0);
    } else {
      timed(() => sched.seedHas(digests[layer] as string, [g - (offset[layer] as number)]));
      changed(layer);
    }
    const waiting = waitingAtSeed[g];
    if (waiting !== undefined) {
      waitingAtSeed[g] = undefined;
      for (const t of waiting) {
        bump(t); // its long-poll timeout is void
        seedEnqueue(t);
      }
    }
  };
  const release = (g: number): void => {
    if ((heldBack[g] as number) === 0) return;
    heldBack[g] = 0;
    const layer = layerOf[g] as number;
    timed(() => sched.seedHas(digests[layer] as string, [g - (offset[layer] as number)]));
    changed(layer);
  };
  /** The hold-back timer: released claimedPieceSeedDelayMs after the last progress of a copy of the piece. */
  const releaseCheck = (g: number): void => {
    if ((heldBack[g] as number) === 0) return;
    const due = (heldProgress[g] as number) + k.claimedPieceSeedDelayMs;
    if (due > now) queue.push(due, RELEASE, g, 0);
    else release(g);
  };
  /** SendReport: the seed's copy of g is alive (queued, open, or draining). */
  const seedProgress = (g: number): void => {
    const layer = layerOf[g] as number;
    sched.seedProgress(digests[layer] as string, g - (offset[layer] as number));
    if ((heldBack[g] as number) === 1) heldProgress[g] = now;
  };
  const armTick = (): void => {
    if (tickArmed) return;
    tickArmed = true;
    queue.push(now + k.sendProgressEveryMs, SEND_TICK, 0, 0);
  };
  const sendTick = (): void => {
    tickArmed = false;
    for (const g of seedOpen.values()) seedProgress(g);
    draining = draining.filter((x) => x.untilMs > now);
    for (const x of draining) seedProgress(x.g);
    if (seedOpen.size > 0 || draining.length > 0) armTick();
  };
  const seedEnqueue = (t: number): void => {
    seedOpen.set(t, fPiece[t] as number);
    seedProgress(fPiece[t] as number);
    armTick();
    if (seedSending < k.seedSendsAtOnce) seedBegin(t);
    else seedQueue.push(t);
  };
  const seedBegin = (t: number): void => {
    seedSending++;
    const d = (fChild[t] as number) * L + (layerOf[fPiece[t] as number] as number);
    dlFlowing[d] = (dlFlowing[d] as number) + 1;
    if (pacedOn) inFlow[(fChild[t] as number) * P + (fPiece[t] as number)] = t;
    startFlow(t, SEED, fChild[t] as number, pieceLen[fPiece[t] as number] as number, sndbuf);
    announceArriving(t);
  };
  const peerBegin = (t: number): void => {
    const parent = fParent[t] as number;
    if (!slotless.has(t)) peerSending[parent] = (peerSending[parent] as number) + 1;
    const d = (fChild[t] as number) * L + (layerOf[fPiece[t] as number] as number);
    dlFlowing[d] = (dlFlowing[d] as number) + 1;
    const g = fPiece[t] as number;
    if (pacedOn) inFlow[(fChild[t] as number) * P + g] = t;
    startFlow(t, parent, fChild[t] as number, pieceLen[g] as number, sndbuf);
    // A relay moves at the pace its own copy arrives.
    if (relayed.has(t) && (have[parent * P + g] as number) === 0) paceLater(t, inFlow[parent * P + g] as number);
    announceArriving(t);
  };
  /** The send's last byte went into the socket: its slot passes on; the rest drains from the kernel. */
  const handedOver = (t: number): void => {
    const parent = fParent[t] as number;
    if (parent === SEED) {
      seedSending--;
      seedOpen.delete(t);
      draining.push({ g: fPiece[t] as number, untilMs: now + k.sendDrainProgressMs });
      armTick();
      const next = seedQueueHead < seedQueue.length ? (seedQueue[seedQueueHead++] as number) : undefined;
      if (seedQueueHead > 1024 && seedQueueHead * 2 > seedQueue.length) {
        seedQueue.splice(0, seedQueueHead);
        seedQueueHead = 0;
      }
      if (next !== undefined) seedBegin(next);
      return;
    }
    peerAccepted[parent] = (peerAccepted[parent] as number) - 1;
    // A relay outside the slots frees none; its count drops when it ends (finish).
    if (slotless.has(t)) return;
    peerSending[parent] = (peerSending[parent] as number) - 1;
    const next = (peerQueue[parent] as number[]).shift();
    if (next !== undefined) peerBegin(next);
  };
  /** Swarm.frontierAhead: how far past the fill point claims reach, from the layer's arrival rate. */
  const frontierAhead = (layer: number): number => {
    const first = firstArrival[layer] as number;
    const count = seedFill[layer] as number;
    const elapsed = now - first;
    if (first < 0 || count < 2 || elapsed <= 0) return k.frontierMinAhead;
    return Math.max(k.frontierMinAhead, Math.min(k.frontierAhead, Math.ceil(((count - 1) / elapsed) * k.frontierHorizonMs)));
  };
  /** Swarm.addFrontier: pieces still coming that nobody holds a live claim on. */
  const frontierPieces: number[] = [];
  const frontierBegun = new Uint8Array(L);
  const addFrontier = (node: number, layer: number, room: number): void => {
    frontierPieces.length = 0;
    // Swarm.addFrontier: a blob's first frontier call looks again once a lone child would count as alone.
    if ((frontierBegun[layer] as number) === 0) {
      frontierBegun[layer] = 1;
      queue.push(now + k.aloneAfterMs, ALONE_CHECK, layer, 0);
    }
    const arrivingPiece = (offset[layer] as number) + (seedFill[layer] as number);
    if ((seedFill[layer] as number) < (layouts[layer] as (typeof layouts)[number]).pieceCount && (claimBy[arrivingPiece] as number) !== -1) extendArrivingClaim(arrivingPiece);
    const mine = (nodeClaims[node] as number[]).filter((g) => (claimBy[g] as number) === node && claimLive(g));
    nodeClaims[node] = mine;
    const l = layouts[layer] as (typeof layouts)[number];
    // A child that is the blob's only member may hold more, shared out over the blobs still arriving that it pulls (Swarm.addFrontier).
    let inBlob = 0;
    let oldestSince = Infinity;
    for (const g of mine) {
      if ((layerOf[g] as number) === layer) inBlob++;
      oldestSince = Math.min(oldestSince, claimSince[g] as number);
    }
    const alone = sched.members(digests[layer] as string) <= 1 && (inBlob > 0 || oldestSince <= now - k.aloneAfterMs);
    let most = Math.min(room, k.frontierPerCall, (alone ? k.maxFrontierClaimsAlone : k.maxFrontierClaimsPerChild) - mine.length);
    const firstAt = firstArrival[layer] as number;
    const arrived = seedFill[layer] as number;
    const slowly = firstAt < 0 || arrived < 2 || (now - firstAt) / (arrived - 1) >= k.shareClaimsFromPieceMs;
    if (alone && slowly) {
      let arriving = 1;
      for (let x = 0; x < L; x++) {
        const lx = layouts[x] as (typeof layouts)[number];
        if (x !== layer && (seedFill[x] as number) < lx.pieceCount && sched.isMember(ids[node] as string, digests[x] as string)) arriving++;
      }
      most = Math.min(most, Math.max(1, Math.floor(k.maxFrontierClaimsAlone / arriving)) - inBlob);
    }
    const first = seedFill[layer] as number;
    const end = Math.min(l.pieceCount, first + frontierAhead(layer));
    for (let i = first; i < end && frontierPieces.length < most; i++) {
      const g = (offset[layer] as number) + i;
      if (claimLive(g)) continue;
      claimBy[g] = node;
      claimUntil[g] = now + k.frontierTtlMs;
      claimSince[g] = now;
      mine.push(g);
      frontierPieces.push(g);
      frontierClaims++;
    }
  };

  // --- a node's downloads ---------------------------------------------------------------
  /** containerd asks the proxy for the node's next layer. */
  const startLayer = (node: number): void => {
    const asked = nextLayer[node] as number;
    if (asked >= L) return;
    nextLayer[node] = asked + 1;
    const layer = layerOrder[asked] as number;
    const d = node * L + layer;
    dlLastProgress[d] = now;
    askFeed(layer);
    if (fallbackOn) queue.push(now + k.firstByteTimeoutMs, PROGRESS_CHECK, d, 0);
    requestMore(d);
  };
  const layerDone = (node: number, layer: number): void => {
    const d = node * L + layer;
    if ((dlDone[d] as number) === 1) return;
    dlDone[d] = 1;
    dlPollVer[d] = (dlPollVer[d] as number) + 1;
    layersDone[node] = (layersDone[node] as number) + 1;
    if (layersDone[node] === L) {
      doneAt[node] = now - nodesStartedAt;
      done++;
    } else {
      startLayer(node);
    }
  };
  const request = (d: number, g: number, cands: Int32Array, at: number): void => {
    const node = Math.floor(d / L);
    const t = alloc();
    fKind[t] = PIECE;
    fParent[t] = -1;
    fChild[t] = node;
    fPiece[t] = g;
    fCandPos[t] = 0;
    fCands[t] = cands;
    asked[node * P + g] = 1;
    dlInflight[d] = (dlInflight[d] as number) + 1;
    queue.push(at, START, t, bump(t));
  };
  /** When a piece request of `node` reaches `parent`: the round trip, the answer's way back from the supernode, the request's way out. */
  const requestAt = (node: number, parent: number, answerDelay: number): number => now + answerDelay + rttMs + queueDelay(node, parent);

  // --- the chain what-if (params.chain) -----------------------------------------------
  const chain = params.chain;
  /** Per node and piece: when its copy began to arrive there (the chain what-if only). */
  const chainSince = chain === undefined ? undefined : new Float64Array(N * P);
  /** Each layer's chain starts at another node, spread around the ring. */
  const chainHead = (layer: number): number => (layer * Math.max(1, Math.floor(N / L))) % N;
  /** The next node's download of the layer looks again: `node` began to receive a piece of it, or has it whole. */
  const chainWakeNext = (node: number, layer: number): void => {
    if (chain === undefined) return;
    const next = (node + 1) % N;
    if (next === chainHead(layer)) return;
    const d = next * L + layer;
    if ((dlDone[d] as number) === 0) queue.push(now, POLL, d, dlPollVer[d] as number);
  };
  /** A chain member asks its parent (the node before it, or the seed) for the next pieces in order, those its parent has or is receiving. */
  const chainRequest = (d: number, window: number, hopMs: number): void => {
    const node = Math.floor(d / L);
    const layer = d % L;
    if ((dlDone[d] as number) === 1 || (dlFallback[d] as number) === 1) return;
    const parent = node === chainHead(layer) ? SEED : (node - 1 + N) % N;
    let room = window - (dlInflight[d] as number);
    const pieces = (layouts[layer] as (typeof layouts)[number]).pieceCount;
    const base = node * P + (offset[layer] as number);
    // From the download's cursor, the first piece it does not hold (as the swarm's turn keeps it).
    let next = dlNext[d] as number;
    while (next < pieces && (have[base + next] as number) === 1) next++;
    dlNext[d] = next;
    for (let i = next; i < pieces && room > 0; i++) {
      const g = (offset[layer] as number) + i;
      if ((have[node * P + g] as number) === 1 || (asked[node * P + g] as number) === 1) continue;
      if (parent !== SEED && (have[parent * P + g] as number) === 0 && (arrivingAt[parent * P + g] as number) === 0) break;
      // Not before hopMs after the parent's copy began to arrive, however this node was woken.
      const due = parent === SEED || chainSince === undefined ? now : (chainSince[parent * P + g] as number) + hopMs;
      if (due > now) {
        queue.push(due, POLL, d, dlPollVer[d] as number);
        break;
      }
      request(d, g, Int32Array.of(parent), requestAt(node, parent, 0));
      room--;
    }
  };

  /** One turn of Download.run (services/peer/src/download.ts) for download d. */
  const requestMore = (d: number): void => {
    dlPollVer[d] = (dlPollVer[d] as number) + 1;
    if (chain !== undefined) return chainRequest(d, chain.window, chain.hopMs);
    if ((dlWaiting[d] as number) === 1) return; // a held schedule call answers on the next change
    const node = Math.floor(d / L);
    const layer = d % L;
    const l = layouts[layer] as (typeof layouts)[number];
    const base = node * P + (offset[layer] as number);
    const digest = digests[layer] as string;
    for (;;) {
      if ((dlDone[d] as number) === 1 || (dlFallback[d] as number) === 1) return;
      const freeSlots = W - (dlInflight[d] as number);
      if (freeSlots <= 0) return; // the next piece to land asks again
      const queued = dlFailures[d];
      if (queued !== undefined && queued.length > 0 && (dlHoldUntil[d] as number) <= now) {
        timed(() => {
          for (let i = 0; i < queued.length; i += 3) {
            const parent = queued[i] as number;
            const kind = queued[i + 2] === UNREACHABLE ? 'unreachable' : queued[i + 2] === MISSING ? 'missing' : 'busy';
            sched.reportFailure(ids[node] as string, parent === SEED ? 'seed' : (ids[parent] as string), digest, queued[i + 1] as number, kind);
          }
        });
        queued.length = 0;
        changed(layer);
      }
      let next = dlNext[d] as number;
      while (next < l.pieceCount && (have[base + next] as number) === 1) next++;
      dlNext[d] = next;
      urgentBuf.length = 0;
      for (let i = next; i < l.pieceCount && urgentBuf.length < k.urgentAhead; i++) if ((have[base + i] as number) === 0 && (asked[base + i] as number) === 0) urgentBuf.push(i);
      if (inWake) heldReruns++;
      else scheduleCalls++;
      inWake = false;
      const assignments = timed(() => sched.schedule(ids[node] as string, digest, { limit: freeSlots, urgent: urgentBuf }));
      let answered = assignments.length;
      if (frontierOn) {
        if ((seedFill[layer] as number) >= l.pieceCount) frontierLive[layer] = 0;
        else if (assignments.length < freeSlots) {
          // Swarm.schedule: in a chain only its head waits at the seed, within its window.
          const slot = chainOn ? sched.chainSlot(ids[node] as string, digest) : undefined;
          const room = Math.min(freeSlots - assignments.length, slot?.head === false ? 0 : (slot?.room ?? Infinity));
          frontierPieces.length = 0;
          if (room > 0) addFrontier(node, layer, room);
          answered += frontierPieces.length;
        }
      }
      if (answered === 0) {
        // Nothing to assign: the supernode holds the call until the swarm changes, or scheduleWaitMs.
        if ((dlHoldUntil[d] as number) <= now) {
          dlHoldUntil[d] = now + k.scheduleWaitMs;
          dlHoldVer[d] = (dlHoldVer[d] as number) + 1;
          queue.push(now + k.scheduleWaitMs, HOLD_TIMEOUT, d, dlHoldVer[d] as number);
        }
        dlWaiting[d] = 1;
        const inChain = chainOn && sched.chainSlot(ids[node] as string, digest) !== undefined;
        ((inChain ? chainWaiters : waiters)[layer] as number[]).push(d);
        return;
      }
      dlHoldUntil[d] = 0;
      const answerDelay = queueDelay(SEED, node);
      let started = 0;
      for (const a of assignments) {
        const g = (offset[layer] as number) + a.piece;
        if ((asked[node * P + g] as number) === 1 || (have[node * P + g] as number) === 1) {
          ignoredAssignments++;
          continue;
        }
        const cands = new Int32Array(a.candidates.length);
        a.candidates.forEach((c, i) => {
          cands[i] = c.kind === 'seed' ? SEED : (indexOf.get(c.peerId) as number);
        });
        request(d, g, cands, requestAt(node, cands[0] as number, answerDelay));
        started++;
      }
      for (const g of frontierPieces) {
        if (answered === assignments.length) break;
        if ((asked[node * P + g] as number) === 1) {
          ignoredAssignments++;
          continue;
        }
        request(d, g, Int32Array.of(SEED), requestAt(node, SEED, answerDelay));
        started++;
      }
      if (started === 0) {
        // An answer that came back at once with nothing new: paced.
        const ms = dlIdleMs[d] as number;
        dlIdleMs[d] = Math.min(k.idlePollMaxMs, ms * 2);
        queue.push(now + ms, POLL, d, dlPollVer[d] as number);
        return;
      }
      dlIdleMs[d] = k.idlePollMinMs;
      if (answered < freeSlots || (dlInflight[d] as number) >= W) {
        queue.push(now + k.idlePollMaxMs, POLL, d, dlPollVer[d] as number);
        return;
      }
    }
  };
  /** Swarm.changed's effect on held calls: each looks again; the deadline stays. */
  const wakeHeld = (held: readonly number[]): void => {
    for (const d of held) {
      if ((dlWaiting[d] as number) === 0) continue;
      dlWaiting[d] = 0;
      inWake = true;
      requestMore(d);
      inWake = false;
    }
  };
  const wake = (layer: number): void => {
    wakePending[layer] = 0;
    // Every chain member's held call (Swarm.changed).
    const chained = chainWaiters[layer] as number[];
    chainWaiters[layer] = [];
    wakeHeld(chained);
    const all = waiters[layer] as number[];
    const budget = wakeBudget[layer] as number;
    wakeBudget[layer] = 0;
    if (all.length === 0) return;
    // Oldest first; the rest keep waiting. A woken call that waits again queues at the back.
    waiters[layer] = all.slice(budget);
    wakeHeld(all.slice(0, budget));
  };
  const holdTimeout = (d: number): void => {
    if ((dlWaiting[d] as number) === 0) return;
    dlWaiting[d] = 0;
    dlHoldUntil[d] = 0;
    removeFrom(waiters[d % L] as number[], d);
    removeFrom(chainWaiters[d % L] as number[], d);
    requestMore(d);
  };

  const pieceGaveUp = (t: number, d: number): void => {
    const node = fChild[t] as number;
    asked[node * P + (fPiece[t] as number)] = 0;
    dlInflight[d] = (dlInflight[d] as number) - 1;
    free.push(t);
    requestMore(d);
  };
  const nextCandidate = (t: number, d: number): void => {
    const cands = fCands[t] as Int32Array;
    const pos = fCandPos[t] as number;
    if (pos + 1 < cands.length) {
      fCandPos[t] = pos + 1;
      const child = fChild[t] as number;
      queue.push(requestAt(child, cands[pos + 1] as number, 0), START, t, bump(t));
    } else {
      pieceGaveUp(t, d);
    }
  };

  /** A piece request reaches its current candidate. */
  const start = (t: number): void => {
    const child = fChild[t] as number;
    const g = fPiece[t] as number;
    const layer = layerOf[g] as number;
    const d = child * L + layer;
    const parent = (fCands[t] as Int32Array)[fCandPos[t] as number] as number;
    fParent[t] = parent;
    if (parent === SEED) {
      if ((seedHasPiece[g] as number) === 0 && (feeding[g] as number) === 1 && cutFlows.size < k.maxCutThroughSends) {
        cutThrough(t);
        return;
      }
      if ((seedHasPiece[g] as number) === 0) {
        // The long-poll: the seed answers when the piece lands, or gives up after pieceWaitMs.
        (waitingAtSeed[g] ??= []).push(t);
        queue.push(now + k.pieceWaitMs, LONG_POLL_TIMEOUT, t, bump(t));
        return;
      }
      seedEnqueue(t);
      return;
    }
    if ((have[parent * P + g] as number) === 0) {
      if (peerCutOn && (arrivingAt[parent * P + g] as number) === 1) relayed.add(t);
      else if (chainOn) {
        // A chain member's request ahead: its link has been given the piece (or had it, and its
        // own request for it failed), and waits for its copy to begin arriving, up to
        // relayWaitMaxMs (routes/blobs.ts: the link's fill moves throughout a pull).
        const waiting = aheadWaiting.get(parent * P + g);
        if (waiting === undefined) aheadWaiting.set(parent * P + g, [t]);
        else waiting.push(t);
        queue.push(now + k.relayWaitMaxMs, AHEAD_TIMEOUT, t, bump(t));
        return;
      } else throw new Error(`node ${parent} listed for piece ${g} it lacks`);
    }
    if ((peerAccepted[parent] as number) >= k.peerMaxUploads) {
      busyRefusals++;
      (dlFailures[d] ??= []).push(parent, g - (offset[layer] as number), BUSY);
      nextCandidate(t, d);
      return;
    }
    peerAccepted[parent] = (peerAccepted[parent] as number) + 1;
    if (relayed.has(t) && (peerRelays[parent] as number) < k.relaysAtOnce) {
      slotless.add(t);
      peerRelays[parent] = (peerRelays[parent] as number) + 1;
      peerBegin(t);
    } else if ((peerSending[parent] as number) < k.peerSendsAtOnce) peerBegin(t);
    else (peerQueue[parent] as number[]).push(t);
  };

  const longPollTimeout = (t: number): void => {
    const g = fPiece[t] as number;
    const layer = layerOf[g] as number;
    // The seed holds on to a request for the piece arriving now while its fetch of the layer
    // moves (services/supernode piece-hold.ts).
    if (arrivingAtSeed(g)) {
      queue.push(now + k.pieceWaitMs, LONG_POLL_TIMEOUT, t, bump(t));
      return;
    }
    const d = (fChild[t] as number) * L + layer;
    const waiting = waitingAtSeed[g];
    if (waiting !== undefined) removeFrom(waiting, t);
    longPollTimeouts++;
    (dlFailures[d] ??= []).push(SEED, g - (offset[layer] as number), UNREACHABLE);
    nextCandidate(t, d);
  };

  /** A flow reached its mark: its slot's hand-over, or its end. */
  const flowEvent = (t: number): void => {
    const rem = (fRem[t] as number) - (fRate[t] as number) * (now - (fLast[t] as number));
    fRem[t] = rem;
    fLast[t] = now;
    const mark = fMark[t] as number;
    if (rem > mark + 0.5) {
      // At rate 0 (a paced send whose source stalls) the next rate rise re-times it.
      if ((fRate[t] as number) > 0) queue.push(now + (rem - mark) / (fRate[t] as number), FLOW, t, bump(t));
      return;
    }
    if (mark > 0) {
      fMark[t] = 0;
      handedOver(t);
      if (rem > 0.5) {
        if ((fRate[t] as number) > 0) queue.push(now + rem / (fRate[t] as number), FLOW, t, bump(t));
        return;
      }
    }
    finish(t);
  };

  const finish = (t: number, arrived = false): void => {
    const parent = fParent[t] as number;
    const child = fChild[t] as number;
    const g = fPiece[t] as number;
    const kind = fKind[t] as number;
    if (!arrived) endFlow(t);
    if (cutFlows.has(t)) {
      // A cut-through send ends once the piece has arrived (its hash follows the bytes).
      if ((feeding[g] as number) === 1) {
        (cutWaiting[g] ??= []).push(t);
        return;
      }
      cutFlows.delete(t);
      seedOpen.delete(t);
      draining.push({ g, untilMs: now + k.sendDrainProgressMs });
    }
    if (relayed.has(t)) {
      const pg = parent * P + g;
      if ((have[pg] as number) === 0) {
        const w = relayWaiting.get(pg);
        if (w === undefined) relayWaiting.set(pg, [t]);
        else w.push(t);
        return;
      }
      relayed.delete(t);
    }
    if (slotless.delete(t)) peerRelays[parent] = (peerRelays[parent] as number) - 1;
    free.push(t);
    const layer = layerOf[g] as number;
    if (kind === FEED) {
      registryEgressBytes += pieceLen[g] as number;
      feeding[g] = 0;
      seedPiece(g);
      feedNext(layer);
      const sends = cutWaiting[g];
      cutWaiting[g] = undefined;
      for (const w of sends ?? []) finish(w, true);
      return;
    }
    if (kind === FALLBACK) {
      const bytes = params.layerBytes[layer] as number;
      registryEgressBytes += bytes;
      registryToNodesBytes += bytes;
      layerDone(child, layer);
      return;
    }
    const len = pieceLen[g] as number;
    if (parent === SEED) seedEgressBytes += len;
    else peerEgressBytes += len;
    const d = child * L + layer;
    have[child * P + g] = 1;
    resumeAhead(child * P + g);
    const relays = relayWaiting.get(child * P + g);
    if (relays !== undefined) {
      relayWaiting.delete(child * P + g);
      for (const w of relays) finish(w, true);
    }
    dlInflight[d] = (dlInflight[d] as number) - 1;
    dlFlowing[d] = (dlFlowing[d] as number) - 1;
    dlHave[d] = (dlHave[d] as number) + 1;
    dlLastProgress[d] = now;
    // Announced at once over the WebSocket: others may fetch it from here now.
    timed(() => sched.peerHas(ids[child] as string, digests[layer] as string, [g - (offset[layer] as number)]));
    if ((claimBy[g] as number) === child) claimBy[g] = -1;
    release(g);
    changed(layer);
    chainWakeNext(child, layer);
    if ((dlFallback[d] as number) === 1) return; // the registry delivers this layer now
    if (dlHave[d] === (layouts[layer] as (typeof layouts)[number]).pieceCount) layerDone(child, layer);
    else requestMore(d);
  };

  /** The proxy's patience: no progress (no piece landed, none moving) for firstByteTimeoutMs → the whole layer from the registry. */
  const progressCheck = (d: number): void => {
    const node = Math.floor(d / L);
    const layer = d % L;
    if ((dlDone[d] as number) === 1) return;
    // Peer.progressAt: bytes of any blob the node fills count (they share its link).
    let last = 0;
    let flowing = false;
    for (let x = node * L; x < (node + 1) * L; x++) {
      last = Math.max(last, dlLastProgress[x] as number);
      if ((dlFlowing[x] as number) > 0) flowing = true;
    }
    const due = last + k.firstByteTimeoutMs;
    // A layer queued at the supernode for a fetch slot is waited for while the fetches
    // ahead of it move (the supernode says so every 5 s); the model's fetches always move.
    if (flowing || ((feedState[layer] as number) === 1 && feedsRunning > 0)) {
      queue.push(now + k.firstByteTimeoutMs, PROGRESS_CHECK, d, 0);
      return;
    }
    if (due > now) {
      queue.push(due, PROGRESS_CHECK, d, 0);
      return;
    }
    dlFallback[d] = 1;
    fallbacks++;
    const t = alloc();
    fKind[t] = FALLBACK;
    fPiece[t] = offset[layer] as number;
    startFlow(t, REG, node, params.layerBytes[layer] as number, 0);
  };

  const concurrency = params.layerConcurrency === undefined || params.layerConcurrency <= 0 ? L : Math.min(L, params.layerConcurrency);
  const nodesStart = (): void => {
    nodesStartedAt = params.preheated === true ? now : 0;
    for (let i = 0; i < N; i++) for (let c = 0; c < concurrency; c++) startLayer(i);
  };
  if (params.preheated === true) for (let layer = 0; layer < L; layer++) askFeed(layer);
  else if ((params.nodeStartMs ?? 0) > 0) queue.push(params.nodeStartMs as number, NODES_START, 0, 0);
  else nodesStart();
  if (params.manifestPrefetchMs !== undefined && params.preheated !== true) queue.push(params.manifestPrefetchMs, MANIFEST_PREFETCH, 0, 0);

  const traceStep = (params.traceEvery ?? 0) * lineRateMs;
  let nextTrace = traceStep;
  while (done < N && queue.pop(ev)) {
    now = ev.time;
    if (traceStep > 0 && now >= nextTrace) {
      nextTrace += traceStep;
      let active = 0;
      for (let i = 0; i < N; i++) for (const q of downPairs[i] as number[]) active += (pFlows[q] as number[]).length;
      const seedUpBps = (upPairs[SEED] as number[]).reduce((a, q) => a + (pRate[q] as number), 0) * 1000 * 8;
      let nodeUp = 0;
      let held = 0;
      for (let i = 0; i < N; i++) nodeUp += (upPairs[i] as number[]).reduce((a, q) => a + (pRate[q] as number), 0);
      for (let i = 0; i < N * P; i++) held += have[i] as number;
      const downs: number[] = [];
      const infl: number[] = [];
      for (let i = 0; i < N; i++) {
        downs.push((downPairs[i] as number[]).reduce((a, q) => a + (pRate[q] as number), 0) / (downCap[i] as number));
        let x = 0;
        for (let l = 0; l < L; l++) x += dlInflight[i * L + l] as number;
        infl.push(x);
      }
      // Pieces some host holds that a node has neither got nor asked for: what its scheduler could have assigned.
      const somewhere = new Uint8Array(P);
      for (let j = 0; j < P; j++) somewhere[j] = seedHasPiece[j] as number;
      for (let i = 0; i < N * P; i++) if (have[i] === 1) somewhere[i % P] = 1;
      const lack: number[] = [];
      for (let i = 0; i < N; i++) {
        let x = 0;
        for (let j = 0; j < P; j++) if (somewhere[j] === 1 && have[i * P + j] === 0 && asked[i * P + j] === 0) x++;
        lack.push(x);
      }
      lack.sort((a, b) => a - b);
      downs.sort((a, b) => a - b);
      infl.sort((a, b) => a - b);
      const dq = `down=${(downs[0] as number).toFixed(2)}/${(downs[N >> 1] as number).toFixed(2)}/${(downs[N - 1] as number).toFixed(2)} infl=${infl[0]}/${infl[N >> 1]}/${infl[N - 1]} lack=${lack[0]}/${lack[N >> 1]}/${lack[N - 1]}`;
      // The seed's sends: to which node, how many hosts send to that node, the pair's rate, which pieces.
      const seedSends = (upPairs[SEED] as number[]).map((q) => {
        const c = pChild[q] as number;
        const pieces = (pFlows[q] as number[]).map((f) => fPiece[f] as number).join(',');
        return `node${c}(${(downPairs[c] as number[]).length} in, ${(((pRate[q] as number) * 8) / 1000).toFixed(1)}Mbit, pieces ${pieces})`;
      });
      console.log(
        `t=${(now / lineRateMs).toFixed(2)} done=${done} seedFill=${[...seedFill].join('/')} flows=${active} seedPairs=${(upPairs[SEED] as number[]).length} seedUp=${(seedUpBps / 1e6).toFixed(1)}Mbit seedSending=${seedSending} seedQueued=${seedQueue.length - seedQueueHead} seedEgress=${(seedEgressBytes / S).toFixed(2)}S fallbacks=${fallbacks} nodeHave=${(held / (N * P)).toFixed(2)} nodeUp=${(nodeUp / (N * (upCap[0] as number))).toFixed(2)} ${dq} seedSends=${seedSends.join(' ')}`,
      );
    }
    if (now > horizonMs) throw new Error(`simulation did not finish within ${horizonMs} ms (${done}/${N} nodes done)`);
    events++;
    switch (ev.kind) {
      case POLL:
        if (ev.version === dlPollVer[ev.id]) requestMore(ev.id);
        break;
      case START:
        if (ev.version === fVer[ev.id]) start(ev.id);
        break;
      case FLOW:
        if (ev.version === fVer[ev.id]) flowEvent(ev.id);
        break;
      case CATCH_UP:
        catchUp(ev.id);
        break;
      case RELEASE:
        releaseCheck(ev.id);
        break;
      case PROGRESS_CHECK:
        progressCheck(ev.id);
        break;
      case LONG_POLL_TIMEOUT:
        if (ev.version === fVer[ev.id]) longPollTimeout(ev.id);
        break;
      case AHEAD_TIMEOUT:
        if (ev.version === fVer[ev.id]) aheadTimeout(ev.id);
        break;
      case HOLD_TIMEOUT:
        if (ev.version === dlHoldVer[ev.id]) holdTimeout(ev.id);
        break;
      case WAKE:
        wake(ev.id);
        break;
      case SEND_TICK:
        sendTick();
        break;
      case NODES_START:
        nodesStart();
        break;
      case MANIFEST_PREFETCH:
        for (let layer = 0; layer < L; layer++) askFeed(layer);
        break;
      case ALONE_CHECK:
        if (sched.members(digests[ev.id] as string) <= 1 && (seedFill[ev.id] as number) < (layouts[ev.id] as (typeof layouts)[number]).pieceCount) changed(ev.id);
        break;
    }
  }
  if (done < N) throw new Error(`simulation stalled: ${done}/${N} nodes done`);

  return {
    params,
    sizeBytes: S,
    pieceCount: P,
    lineRateMs,
    completionMs: doneAt.sort(),
    registryEgressBytes,
    registryToNodesBytes,
    layerFetchStartMs: [...feedStartedAt],
    fallbacks,
    seedEgressBytes,
    pacedSends,
    peerEgressBytes,
    events,
    scheduleCalls,
    heldReruns,
    busyRefusals,
    longPollTimeouts,
    aheadMisses,
    ignoredAssignments,
    frontierClaims,
    heldBack: heldBackCount,
    schedulerMs,
    wallMs: performance.now() - wallStart,
  };
}
