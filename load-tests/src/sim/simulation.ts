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
 * Hosts and links. Every node, the supernode host (the seed) and the registry have an
 * upload and a download capacity (`links`; by default all equal to B, as bench:swarm
 * shapes them). Every byte moves in a flow parent → child: a piece between peers, a piece
 * from the seed, a piece of the seed's back-to-source from the registry, or a whole layer
 * from the registry to a node whose proxy gave up on the swarm. A flow's rate is
 *
 *     min(up(parent) / flows leaving parent, down(child) / flows entering child)
 *
 * recomputed at both ends whenever a flow starts or ends: equal shares of each link, each
 * flow held to its tighter end. Next to TCP's max-min sharing this never over-subscribes a
 * link and is, if anything, pessimistic (share a flow cannot use at one end is not handed
 * to others there). A request costs `rttMs` before its bytes flow.
 *
 * The image. containerd fetches the layers in manifest order, `layerConcurrency` at a time
 * (0: all at once, as `ctr images pull`; the CRI plugin's default is 3); each layer is a blob with its own download in the node agent (a window of
 * `pieceWindow` pieces, urgent = its next missing pieces in order, the engine's naps) and
 * its own scheduler entry. A node is done when it holds every layer (the harness's
 * "fetch" time; containerd's unpack is not modelled).
 *
 * The supernode. It starts a layer's back-to-source when the first node asks for it (at
 * most `supernodeMaxConcurrentFetches` at once), piece after piece in order; the
 * registry's upload and the seed's download are shared between those flows. A piece is
 * offered (seedHas) when it has arrived, unless the frontier long-poll claimed it (then
 * held back until its claimer announces it, or claimedPieceSeedDelayMs). A node that asks
 * the seed for a piece the seed lacks waits up to pieceWaitMs (the long-poll), then
 * reports the seed 'unreachable'. The seed never refuses; a peer refuses beyond
 * `peerMaxUploads` ('busy', reported with the child's next schedule call).
 *
 * The proxy. When a layer's download has not delivered its first piece firstByteTimeoutMs
 * after containerd asked, the proxy fetches the whole layer from the registry (registry
 * egress beyond S; a "fallback"). That layer's swarm download stops asking; what it has
 * it still serves. Not modelled: the proxy's body-idle cut (containerd resumes with Range),
 * the supernode's answer time (answers are instant), CPU.
 *
 * Length: this file is over 600 lines because `simulate` is one event loop whose
 * handlers (poll, start, finish, release, first-byte check, long-poll timeout) share the
 * state of one run through closures; split apart, each would take that whole state as an
 * argument. Its helpers stand alone in heap.ts, rng.ts, constants.ts and svg.ts.
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
  /** Layers containerd fetches at once (0: all, as `ctr images pull` by default; 3 is the CRI plugin's default). @default 0 */
  layerConcurrency?: number;
  seed: number;
  scheduler: SchedulerInit;
  constants: ModelConstants;
  /** The supernode's frontier long-poll (the code has it). @default true */
  frontier?: boolean;
  /** The proxy's first-byte fallback (the code has it). @default true */
  proxyFallback?: boolean;
  /** Print a line of swarm state every this fraction of S/B (0: never). */
  traceEvery?: number;
}

export interface SimResult {
  params: SimParams;
  sizeBytes: number;
  pieceCount: number;
  /** S/B in ms: one node's time on its own link. */
  lineRateMs: number;
  /** Each node's completion time (ms), ascending. */
  completionMs: Float64Array;
  registryEgressBytes: number;
  /** Of registryEgressBytes, what went to nodes (proxy fallbacks). */
  registryToNodesBytes: number;
  fallbacks: number;
  seedEgressBytes: number;
  peerEgressBytes: number;
  events: number;
  scheduleCalls: number;
  busyRefusals: number;
  longPollTimeouts: number;
  ignoredAssignments: number;
  frontierClaims: number;
  heldBack: number;
  schedulerMs: number;
  wallMs: number;
}

// Event kinds.
const POLL = 1;
const START = 2;
const FINISH = 3;
const RELEASE = 4;
const FIRST_BYTE_CHECK = 5;
const LONG_POLL_TIMEOUT = 6;
// Flow kinds.
const PIECE = 0;
const FEED = 1;
const FALLBACK = 2;
const BUSY = 0;
const UNREACHABLE = 1;

export function simulate(params: SimParams): SimResult {
  const wallStart = performance.now();
  const k = params.constants;
  const { nodes: N, rttMs } = params;
  const W = k.pieceWindow;
  const L = params.layerBytes.length;
  const frontierOn = params.frontier ?? true;
  const fallbackOn = params.proxyFallback ?? true;
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
  const bpms = (bits: number | undefined): number => (bits ?? params.rateBitsPerSec) / 8 / 1000;
  const SEED = N;
  const REG = N + 1;
  const upCap = new Float64Array(N + 2).fill(bpms(params.links?.nodeUp));
  const downCap = new Float64Array(N + 2).fill(bpms(params.links?.nodeDown));
  upCap[SEED] = bpms(params.links?.seedUp);
  downCap[SEED] = bpms(params.links?.seedDown);
  upCap[REG] = bpms(params.links?.registryUp);
  downCap[REG] = 0;
  const lineRateMs = S / Math.min(bpms(params.links?.nodeDown), bpms(params.links?.registryUp));
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
  const dlStarted = new Uint8Array(D);
  const dlDone = new Uint8Array(D);
  const dlFallback = new Uint8Array(D);
  const dlHave = new Int32Array(D);
  const dlInflight = new Int32Array(D);
  const dlNext = new Int32Array(D);
  const dlPollVer = new Int32Array(D);
  const dlIdleMs = new Float64Array(D).fill(k.idlePollMinMs);
  const dlFailures: Array<number[] | undefined> = new Array<number[] | undefined>(D);
  // Per node.
  const nextLayer = new Int32Array(N);
  const layersDone = new Int32Array(N);
  const doneAt = new Float64Array(N).fill(-1);
  // The seed.
  const seedHasPiece = new Uint8Array(P);
  const seedFill = new Int32Array(L); // pieces of the layer arrived, in order
  const feedState = new Uint8Array(L); // 0 not asked, 1 queued, 2 fetching
  const feedQueue: number[] = [];
  let feedsRunning = 0;
  const claimBy = new Int32Array(P).fill(-1);
  const claimUntil = new Float64Array(P);
  const heldBack = new Uint8Array(P);
  const waitingAtSeed: Array<number[] | undefined> = new Array<number[] | undefined>(P);

  // Flows (pooled typed arrays).
  let cap = 1 << 14;
  let fKind = new Uint8Array(cap);
  let fParent = new Int32Array(cap);
  let fChild = new Int32Array(cap);
  let fPiece = new Int32Array(cap);
  let fCandPos = new Int32Array(cap);
  let fVer = new Int32Array(cap);
  let fRem = new Float64Array(cap);
  let fRate = new Float64Array(cap);
  let fLast = new Float64Array(cap);
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
      fCandPos = grow(fCandPos, (n) => new Int32Array(n));
      fVer = grow(fVer, (n) => new Int32Array(n));
      fRem = grow(fRem, (n) => new Float64Array(n));
      fRate = grow(fRate, (n) => new Float64Array(n));
      fLast = grow(fLast, (n) => new Float64Array(n));
    }
    return used++;
  };
  const ups: number[][] = Array.from({ length: N + 2 }, () => []);
  const downs: number[][] = Array.from({ length: N + 2 }, () => []);

  const queue = new EventQueue();
  const ev = { time: 0, kind: 0, id: 0, version: 0 };
  let events = 0;
  let scheduleCalls = 0;
  let busyRefusals = 0;
  let longPollTimeouts = 0;
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

  const bump = (t: number): number => (fVer[t] = (fVer[t] as number) + 1);
  const removeFrom = (list: number[], t: number): void => {
    const i = list.indexOf(t);
    list[i] = list[list.length - 1] as number;
    list.pop();
  };
  const rerate = (list: number[]): void => {
    for (const t of list) {
      const parent = fParent[t] as number;
      const child = fChild[t] as number;
      const rate = Math.min((upCap[parent] as number) / (ups[parent] as number[]).length, (downCap[child] as number) / (downs[child] as number[]).length);
      const old = fRate[t] as number;
      if (rate === old) continue;
      fRem[t] = (fRem[t] as number) - old * (now - (fLast[t] as number));
      fLast[t] = now;
      fRate[t] = rate;
      // Faster: re-time the finish. Slower: the pending finish fires early and re-times itself.
      if (rate > old) queue.push(now + Math.max(0, fRem[t] as number) / rate, FINISH, t, bump(t));
    }
  };
  const startFlow = (t: number, parent: number, bytes: number): void => {
    fParent[t] = parent;
    fRem[t] = bytes;
    fRate[t] = 0;
    fLast[t] = now;
    (ups[parent] as number[]).push(t);
    (downs[fChild[t] as number] as number[]).push(t);
    rerate(ups[parent] as number[]);
    rerate(downs[fChild[t] as number] as number[]);
  };

  // --- the supernode's back-to-source -------------------------------------------------
  const feedNext = (layer: number): void => {
    const i = seedFill[layer] as number;
    const l = layouts[layer];
    if (l === undefined || i >= l.pieceCount) {
      feedsRunning--;
      const q = feedQueue.shift();
      if (q !== undefined) startFeed(q);
      return;
    }
    const t = alloc();
    fKind[t] = FEED;
    fChild[t] = SEED;
    fPiece[t] = (offset[layer] as number) + i;
    startFlow(t, REG, pieceLen[(offset[layer] as number) + i] as number);
  };
  const startFeed = (layer: number): void => {
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
  /** A piece reached the seed: offered now, or held back for its claimer; long-polls waiting for it start. */
  const seedPiece = (g: number): void => {
    seedHasPiece[g] = 1;
    const layer = layerOf[g] as number;
    seedFill[layer] = (seedFill[layer] as number) + 1;
    if (frontierOn && (claimBy[g] as number) !== -1 && (claimUntil[g] as number) > now) {
      heldBack[g] = 1;
      heldBackCount++;
      queue.push(now + k.claimedPieceSeedDelayMs, RELEASE, g, 0);
    } else {
      timed(() => sched.seedHas(digests[layer] as string, [g - (offset[layer] as number)]));
    }
    const waiting = waitingAtSeed[g];
    if (waiting !== undefined) {
      waitingAtSeed[g] = undefined;
      for (const t of waiting) {
        bump(t); // its long-poll timeout is void
        startFlow(t, SEED, pieceLen[g] as number);
      }
    }
  };
  const release = (g: number): void => {
    if ((heldBack[g] as number) === 0) return;
    heldBack[g] = 0;
    const layer = layerOf[g] as number;
    timed(() => sched.seedHas(digests[layer] as string, [g - (offset[layer] as number)]));
  };
  /** Swarm.addFrontier: pieces still coming that nobody holds a live claim on. */
  const frontierPieces: number[] = [];
  const addFrontier = (node: number, layer: number, room: number): void => {
    frontierPieces.length = 0;
    const l = layouts[layer] as (typeof layouts)[number];
    const most = Math.min(room, k.frontierPerCall);
    const first = seedFill[layer] as number;
    const end = Math.min(l.pieceCount, first + k.frontierAhead);
    for (let i = first; i < end && frontierPieces.length < most; i++) {
      const g = (offset[layer] as number) + i;
      if ((claimBy[g] as number) !== -1 && (claimUntil[g] as number) > now) continue;
      claimBy[g] = node;
      claimUntil[g] = now + k.frontierTtlMs;
      frontierPieces.push(g);
      frontierClaims++;
    }
  };

  // --- a node's downloads ---------------------------------------------------------------
  /** containerd asks the proxy for the node's next layer. */
  const startLayer = (node: number): void => {
    const layer = nextLayer[node] as number;
    if (layer >= L) return;
    nextLayer[node] = layer + 1;
    const d = node * L + layer;
    dlStarted[d] = 1;
    askFeed(layer);
    if (fallbackOn) queue.push(now + k.firstByteTimeoutMs, FIRST_BYTE_CHECK, d, 0);
    requestMore(d);
  };
  const layerDone = (node: number, layer: number): void => {
    const d = node * L + layer;
    if ((dlDone[d] as number) === 1) return;
    dlDone[d] = 1;
    dlPollVer[d] = (dlPollVer[d] as number) + 1;
    layersDone[node] = (layersDone[node] as number) + 1;
    if (layersDone[node] === L) {
      doneAt[node] = now;
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

  /** One turn of Download.run (services/peer/src/download.ts) for download d. */
  const requestMore = (d: number): void => {
    dlPollVer[d] = (dlPollVer[d] as number) + 1;
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
      if (queued !== undefined && queued.length > 0) {
        timed(() => {
          for (let i = 0; i < queued.length; i += 3) {
            const parent = queued[i] as number;
            sched.reportFailure(ids[node] as string, parent === SEED ? 'seed' : (ids[parent] as string), digest, queued[i + 1] as number, queued[i + 2] === UNREACHABLE ? 'unreachable' : 'busy');
          }
        });
        queued.length = 0;
      }
      let next = dlNext[d] as number;
      while (next < l.pieceCount && (have[base + next] as number) === 1) next++;
      dlNext[d] = next;
      urgentBuf.length = 0;
      for (let i = next; i < l.pieceCount && urgentBuf.length < k.urgentAhead; i++) if ((have[base + i] as number) === 0 && (asked[base + i] as number) === 0) urgentBuf.push(i);
      scheduleCalls++;
      const assignments = timed(() => sched.schedule(ids[node] as string, digest, { limit: freeSlots, urgent: urgentBuf }));
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
        request(d, g, cands, now + rttMs);
        started++;
      }
      let answered = assignments.length;
      if (frontierOn && (seedFill[layer] as number) < l.pieceCount && assignments.length < freeSlots) {
        addFrontier(node, layer, freeSlots - assignments.length);
        answered += frontierPieces.length;
        for (const g of frontierPieces) {
          if ((asked[node * P + g] as number) === 1) {
            ignoredAssignments++;
            continue;
          }
          request(d, g, Int32Array.of(SEED), now + rttMs);
          started++;
        }
      }
      if (started === 0) {
        const ms = dlIdleMs[d] as number;
        dlIdleMs[d] = Math.min(k.idlePollMaxMs, ms * 2);
        queue.push(now + ms, POLL, d, dlPollVer[d] as number);
        return;
      }
      dlIdleMs[d] = k.idlePollMinMs;
      if (answered < freeSlots) {
        queue.push(now + k.idlePollMaxMs, POLL, d, dlPollVer[d] as number);
        return;
      }
    }
  };

  const pieceGaveUp = (t: number, d: number): void => {
    const node = fChild[t] as number;
    asked[node * P + (fPiece[t] as number)] = 0;
    dlInflight[d] = (dlInflight[d] as number) - 1;
    free.push(t);
    requestMore(d);
  };

  /** A piece request reaches its current candidate. */
  const start = (t: number): void => {
    const child = fChild[t] as number;
    const g = fPiece[t] as number;
    const layer = layerOf[g] as number;
    const d = child * L + layer;
    const cands = fCands[t] as Int32Array;
    const pos = fCandPos[t] as number;
    const parent = cands[pos] as number;
    if (parent === SEED) {
      if ((seedHasPiece[g] as number) === 0) {
        // The long-poll: the seed answers when the piece lands, or gives up after pieceWaitMs.
        (waitingAtSeed[g] ??= []).push(t);
        queue.push(now + k.pieceWaitMs, LONG_POLL_TIMEOUT, t, bump(t));
        return;
      }
      startFlow(t, SEED, pieceLen[g] as number);
      return;
    }
    if ((have[parent * P + g] as number) === 0) throw new Error(`node ${parent} listed for piece ${g} it lacks`);
    if ((ups[parent] as number[]).length >= k.peerMaxUploads) {
      busyRefusals++;
      (dlFailures[d] ??= []).push(parent, g - (offset[layer] as number), BUSY);
      if (pos + 1 < cands.length) {
        fCandPos[t] = pos + 1;
        queue.push(now + rttMs, START, t, bump(t));
      } else {
        pieceGaveUp(t, d);
      }
      return;
    }
    startFlow(t, parent, pieceLen[g] as number);
  };

  const longPollTimeout = (t: number): void => {
    const g = fPiece[t] as number;
    const layer = layerOf[g] as number;
    const child = fChild[t] as number;
    const d = child * L + layer;
    const waiting = waitingAtSeed[g];
    if (waiting !== undefined) removeFrom(waiting, t);
    longPollTimeouts++;
    (dlFailures[d] ??= []).push(SEED, g - (offset[layer] as number), UNREACHABLE);
    const cands = fCands[t] as Int32Array;
    const pos = fCandPos[t] as number;
    if (pos + 1 < cands.length) {
      fCandPos[t] = pos + 1;
      queue.push(now + rttMs, START, t, bump(t));
    } else {
      pieceGaveUp(t, d);
    }
  };

  const finish = (t: number): void => {
    const rem = (fRem[t] as number) - (fRate[t] as number) * (now - (fLast[t] as number));
    fRem[t] = rem;
    fLast[t] = now;
    if (rem > 0.5) {
      queue.push(now + rem / (fRate[t] as number), FINISH, t, bump(t));
      return;
    }
    const parent = fParent[t] as number;
    const child = fChild[t] as number;
    const g = fPiece[t] as number;
    const kind = fKind[t] as number;
    bump(t);
    removeFrom(ups[parent] as number[], t);
    removeFrom(downs[child] as number[], t);
    rerate(ups[parent] as number[]);
    rerate(downs[child] as number[]);
    free.push(t);
    const layer = layerOf[g] as number;
    if (kind === FEED) {
      registryEgressBytes += pieceLen[g] as number;
      seedPiece(g);
      feedNext(layer);
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
    dlInflight[d] = (dlInflight[d] as number) - 1;
    dlHave[d] = (dlHave[d] as number) + 1;
    timed(() => sched.peerHas(ids[child] as string, digests[layer] as string, [g - (offset[layer] as number)]));
    if ((heldBack[g] as number) === 1) release(g);
    if ((dlFallback[d] as number) === 1) return; // the registry delivers this layer now
    if (dlHave[d] === (layouts[layer] as (typeof layouts)[number]).pieceCount) layerDone(child, layer);
    else requestMore(d);
  };

  /** The proxy's first-byte timer: no first piece yet → the whole layer from the registry. */
  const firstByteCheck = (d: number): void => {
    const node = Math.floor(d / L);
    const layer = d % L;
    if ((dlDone[d] as number) === 1 || (have[node * P + (offset[layer] as number)] as number) === 1) return;
    dlFallback[d] = 1;
    fallbacks++;
    const t = alloc();
    fKind[t] = FALLBACK;
    fChild[t] = node;
    fPiece[t] = offset[layer] as number;
    startFlow(t, REG, params.layerBytes[layer] as number);
  };

  const concurrency = params.layerConcurrency === undefined || params.layerConcurrency <= 0 ? L : Math.min(L, params.layerConcurrency);
  for (let i = 0; i < N; i++) for (let c = 0; c < concurrency; c++) startLayer(i);

  const traceStep = (params.traceEvery ?? 0) * lineRateMs;
  let nextTrace = traceStep;
  while (done < N && queue.pop(ev)) {
    now = ev.time;
    if (traceStep > 0 && now >= nextTrace) {
      nextTrace += traceStep;
      let active = 0;
      for (let i = 0; i < N; i++) active += (downs[i] as number[]).length;
      console.log(`t=${(now / lineRateMs).toFixed(2)} done=${done} seedFill=${[...seedFill].join('/')} flows=${active} seedUp=${(ups[SEED] as number[]).length} regUp=${(ups[REG] as number[]).length} fallbacks=${fallbacks}`);
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
      case FINISH:
        if (ev.version === fVer[ev.id]) finish(ev.id);
        break;
      case RELEASE:
        release(ev.id);
        break;
      case FIRST_BYTE_CHECK:
        firstByteCheck(ev.id);
        break;
      case LONG_POLL_TIMEOUT:
        if (ev.version === fVer[ev.id]) longPollTimeout(ev.id);
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
    fallbacks,
    seedEgressBytes,
    peerEgressBytes,
    events,
    scheduleCalls,
    busyRefusals,
    longPollTimeouts,
    ignoredAssignments,
    frontierClaims,
    heldBack: heldBackCount,
    schedulerMs,
    wallMs: performance.now() - wallStart,
  };
}
