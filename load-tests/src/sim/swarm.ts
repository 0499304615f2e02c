import { PIECE_WAIT_MS, pieceLayout, pieceSpan } from '@shoal/core';
import { DEFAULT_MAX_UPLOADS } from '@shoal/peer';
import { EventQueue } from './heap.js';
import { seededRandom } from './rng.js';
import { Scheduler, type SchedulerInit } from './scheduler.js';

/**
 * A discrete-event simulation of one blob pulled by N nodes at the same moment,
 * driving the supernode's real Scheduler with simulated peers and links.
 *
 * Network model. Every node has a link of rate B up and B down; the supernode
 * (the seed) uploads at B too, and its download link carries only the registry
 * feed, so the seed learns piece i (seedHas) when the registry has sent i + 1
 * pieces at rate B — registry egress is S by construction. Each running
 * transfer parent → child moves at
 *
 *     rate = min(B / uploads(parent), B / downloads(child))
 *
 * (uploads/downloads = transfers of that node moving bytes now), recomputed for
 * every transfer of the parent and of the child whenever one of theirs starts or
 * ends: equal shares of each link, each flow limited by its tighter end. It is
 * conservative next to TCP's max-min fairness — share a flow cannot use at one
 * end is not handed to the others there — so links are never over-subscribed
 * and the completion times are, if anything, pessimistic. A request costs one
 * round trip (`rttMs`) before its bytes start to flow; the supernode's answers
 * are taken as instantaneous (a peer asks while its window is still busy).
 *
 * Peers behave like the peer engine: each keeps up to `window` pieces in
 * flight; whenever a slot is free it calls schedule(limit = free slots, urgent =
 * the next `urgent` missing pieces in order), fetches each piece from its first
 * candidate, falls back to the next on 'busy' (a peer refuses beyond its
 * upload cap, `peerMaxUploads` as `shoal node --max-uploads`, 16 by default,
 * which is above the scheduler's maxUploadsPerPeer; the child reports it; the
 * seed never refuses: its piece route has no cap, maxSeedUploads only bounds
 * what the scheduler sends it), and announces every completed piece with
 * peerHas. Like the engine, a peer asks again at once only when the answer
 * filled every free slot; an answer that started fetches but filled fewer
 * slots is followed by a nap of up to 100 ms, and an answer that started
 * nothing by a nap of `pollMs` doubling to 100 ms while idle; a nap ends early
 * when one of its transfers ends. 'busy' refusals reach the scheduler with the
 * peer's next call; so do announcements, and since a transfer ending wakes the
 * peer, that call comes at once (the sim calls peerHas when the piece lands).
 * Peers keep serving after they complete. `frontier` (on by default, as the
 * supernode runs) adds the supernode's long-poll and its hold-back of claimed
 * pieces (see addFrontier).
 *
 * Cost: events are start/finish of transfers (plus re-timings when a flow's
 * rate rises), polls and the seed's pieces; all state is in typed arrays.
 *
 * Not modelled: the supernode's answer time and its own network hop (answers
 * are instantaneous), readers' cursors (urgent = the next missing pieces).
 */
export interface SimParams {
  nodes: number;
  sizeBytes: number;
  /** B, for every link: nodes up and down, the seed's upload, the registry feed. */
  rateBitsPerSec: number;
  /** Pieces a peer keeps in flight. */
  window: number;
  /** Urgent pieces a peer passes (its next missing ones, in order). */
  urgent: number;
  rttMs: number;
  /** A peer's first idle nap; it doubles up to 100 ms while nothing comes. */
  pollMs: number;
  /** Model the supernode's long-poll for pieces the seed does not have yet (and its hold-back of claimed pieces). @default true */
  frontier?: boolean;
  /**
   * Experiments, not what the supernode does: claim only pieces fewer than this
   * many past the seed's fill front (default: any), and the claims' lifetime
   * (default FRONTIER_TTL_MS, 15 s).
   */
  frontierAhead?: number;
  frontierTtlMs?: number;
  seed: number;
  scheduler: SchedulerInit;
  /** Pieces a peer serves at once before refusing with 'busy' (`shoal node --max-uploads`). @default DEFAULT_MAX_UPLOADS of the peer */
  peerMaxUploads?: number;
  /** Print a line of swarm state every this fraction of S/B (0: never). */
  traceEvery?: number;
}

export interface SimResult {
  params: SimParams;
  pieceCount: number;
  pieceSizeBytes: number;
  /** S/B in ms: one node's time on its own link. */
  lineRateMs: number;
  /** Each node's completion time (ms), ascending. */
  completionMs: Float64Array;
  registryEgressBytes: number;
  seedEgressBytes: number;
  peerEgressBytes: number;
  events: number;
  scheduleCalls: number;
  busyRefusals: number;
  /** Frontier long-polls the seed ended unanswered after PIECE_WAIT_MS (the child reports the seed 'unreachable'). */
  longPollTimeouts: number;
  /** Assignments the peer skipped (already fetching the piece): the scheduler counts them until their TTL. */
  ignoredAssignments: number;
  maxSeedConcurrent: number;
  /** Seed egress to frontier claimers (long-polls), bytes; the rest went to children the scheduler sent. */
  seedFrontierEgressBytes: number;
  /** Pieces the seed sent more than once (extra copies), and how many extra copies. */
  seedDuplicatedPieces: number;
  seedExtraCopies: number;
  /** Frontier pieces handed out (claims), and claimed pieces held back from the scheduler when they landed at the seed. */
  frontierClaims: number;
  heldBack: number;
  /** Held-back pieces released by the claimer's announcement, and by the 2 s timer. */
  releasedByAnnounce: number;
  releasedByTimer: number;
  /** Naps after an answer that started fetches but did not fill the window (the engine's new rule). */
  partialNaps: number;
  /** Time spent inside the Scheduler's methods (what one supernode would spend). */
  schedulerMs: number;
  wallMs: number;
}

const SEED_PIECE = 0;
const POLL = 1;
const START = 2;
const FINISH = 3;
const RELEASE = 4;
/** Failure kinds a child reports. */
const BUSY = 0;
const UNREACHABLE = 1;
const DIGEST = `sha256:${'5'.repeat(64)}`;
/** The peer engine's idle naps double up to this (services/peer/src/download.ts). */
const IDLE_POLL_MAX_MS = 100;
/** The supernode's long-poll (services/supernode/src/swarm.ts): pieces per call, claim lifetime. */
const FRONTIER_PER_CALL = 4;
const FRONTIER_TTL_MS = 15_000;
/** The supernode keeps a claimed piece that reached the seed from the scheduler this long, or until its claimer announces it. */
const CLAIMED_PIECE_SEED_DELAY_MS = 2_000;

export function simulate(params: SimParams): SimResult {
  const wallStart = performance.now();
  const { nodes: N, window: W, rttMs, pollMs } = params;
  const frontierOn = params.frontier ?? true;
  // As services/supernode/src/swarm.ts FRONTIER_AHEAD.
  const frontierAhead = params.frontierAhead ?? 64;
  const frontierTtlMs = params.frontierTtlMs ?? FRONTIER_TTL_MS;
  const layout = pieceLayout(params.sizeBytes);
  const P = layout.pieceCount;
  const pieceLen = Array.from({ length: P }, (_, i) => pieceSpan(layout, i).length);
  const B = params.rateBitsPerSec / 8 / 1000; // bytes per ms
  const lineRateMs = params.sizeBytes / B;
  const SEED = N;
  const maxUploads = params.peerMaxUploads ?? DEFAULT_MAX_UPLOADS;
  const horizonMs = 100 * lineRateMs;

  let now = 0;
  const random = seededRandom(params.seed);
  const sched = new Scheduler({ clock: { now: () => now }, random }, params.scheduler);
  const ids: string[] = [];
  const indexOf = new Map<string, number>();
  for (let i = 0; i < N; i++) {
    const id = `node-${i}`;
    ids.push(id);
    indexOf.set(id, i);
    sched.addPeer({ peerId: id, url: `sim://${id}` });
  }
  sched.addBlob(DIGEST, P);

  // Per node (the seed is index N in the link tables).
  const have = new Uint8Array(N * P);
  const asked = new Uint8Array(N * P);
  const haveCount = new Int32Array(N);
  const inflight = new Int32Array(N);
  const nextInOrder = new Int32Array(N);
  const pollVer = new Int32Array(N);
  const idleMs = new Float64Array(N).fill(pollMs);
  /** Per node: (parent, piece, kind) triples (kind: BUSY or UNREACHABLE), reported with its next call. */
  const failures: Array<number[] | undefined> = new Array<number[] | undefined>(N);
  // Frontier claims (see addFrontier).
  const claimBy = new Int32Array(P).fill(-1);
  const claimUntil = new Float64Array(P);
  const seedArrival = new Float64Array(P);
  /** Pieces at the seed kept from the scheduler (see CLAIMED_PIECE_SEED_DELAY_MS). */
  const heldBack = new Uint8Array(P);
  const seedCopies = new Int32Array(P);
  const frontierPieces: number[] = [];
  let seedKnown = 0;
  let ignoredAssignments = 0;
  const doneAt = new Float64Array(N).fill(-1);
  const ups: number[][] = Array.from({ length: N + 1 }, () => []);
  const downs: number[][] = Array.from({ length: N }, () => []);

  // Transfers, pooled.
  let cap = 1 << 14;
  let tParent = new Int32Array(cap);
  let tChild = new Int32Array(cap);
  let tPiece = new Int32Array(cap);
  let tCandPos = new Int32Array(cap);
  let tVer = new Int32Array(cap);
  let tRem = new Float64Array(cap);
  let tRate = new Float64Array(cap);
  let tLast = new Float64Array(cap);
  /** 1: a frontier long-poll (its bytes are the seed's frontier egress). */
  let tFrontier = new Uint8Array(cap);
  const tCands: Int32Array[] = [];
  const free: number[] = [];
  let used = 0;
  const alloc = (): number => {
    const t = free.pop();
    if (t !== undefined) return t;
    if (used === cap) {
      cap *= 2;
      const g32 = (a: Int32Array): Int32Array<ArrayBuffer> => {
        const b = new Int32Array(cap);
        b.set(a);
        return b;
      };
      const g64 = (a: Float64Array): Float64Array<ArrayBuffer> => {
        const b = new Float64Array(cap);
        b.set(a);
        return b;
      };
      tParent = g32(tParent);
      tChild = g32(tChild);
      tPiece = g32(tPiece);
      tCandPos = g32(tCandPos);
      tVer = g32(tVer);
      tRem = g64(tRem);
      tRate = g64(tRate);
      tLast = g64(tLast);
      const f = new Uint8Array(cap);
      f.set(tFrontier);
      tFrontier = f;
    }
    return used++;
  };

  const queue = new EventQueue();
  const ev = { time: 0, kind: 0, id: 0, version: 0 };
  let events = 0;
  let scheduleCalls = 0;
  let busyRefusals = 0;
  let longPollTimeouts = 0;
  let seedFrontierEgressBytes = 0;
  let frontierClaims = 0;
  let heldBackCount = 0;
  let releasedByAnnounce = 0;
  let releasedByTimer = 0;
  let partialNaps = 0;
  let registryEgressBytes = 0;
  let seedEgressBytes = 0;
  let peerEgressBytes = 0;
  let maxSeedConcurrent = 0;
  let schedulerMs = 0;
  let done = 0;
  const urgentBuf: number[] = [];

  /** A new version of t's finish event; older ones are ignored when they fire. */
  const bump = (t: number): number => (tVer[t] = (tVer[t] as number) + 1);

  const remove = (list: number[], t: number): void => {
    const i = list.indexOf(t);
    list[i] = list[list.length - 1] as number;
    list.pop();
  };

  /** Re-rates every transfer in `list` after a start/finish at one of its ends. */
  const rerate = (list: number[]): void => {
    for (const t of list) {
      const parent = tParent[t] as number;
      const child = tChild[t] as number;
      const rate = Math.min(B / (ups[parent] as number[]).length, B / (downs[child] as number[]).length);
      const old = tRate[t] as number;
      if (rate === old) continue;
      tRem[t] = (tRem[t] as number) - old * (now - (tLast[t] as number));
      tLast[t] = now;
      tRate[t] = rate;
      // Faster: re-time the finish. Slower: the pending finish fires early and re-times itself.
      if (rate > old) queue.push(now + Math.max(0, tRem[t] as number) / rate, FINISH, t, bump(t));
    }
  };

  /** A request for `piece` from the first of `cands`, starting at `at`. */
  const request = (node: number, piece: number, cands: Int32Array, at: number, frontier: boolean): void => {
    const t = alloc();
    tParent[t] = -1;
    tFrontier[t] = frontier ? 1 : 0;
    tChild[t] = node;
    tPiece[t] = piece;
    tCandPos[t] = 0;
    tCands[t] = cands;
    asked[node * P + piece] = 1;
    inflight[node] = (inflight[node] as number) + 1;
    queue.push(at, START, t, 0);
  };

  /**
   * The supernode's long-poll while the seed is still filling the blob
   * (Swarm.addFrontier in services/supernode/src/swarm.ts): when the
   * scheduler's answer has fewer pieces than the child asked for, the answer
   * also gets up to min(room, 4) pieces the seed does not hold yet (in index
   * order) whose claim is not live (none, or older than 15 s); each is claimed
   * for this child. The child asks the seed for it, and the seed answers when
   * the piece lands. The scheduler is not told about these. Fills
   * `frontierPieces`; the engine skips those it already fetches.
   */
  const addFrontier = (node: number, room: number): void => {
    frontierPieces.length = 0;
    const most = Math.min(room, FRONTIER_PER_CALL);
    // The seed receives pieces in order: the ones it lacks are seedKnown..P-1 (none in the scheduler's answer).
    const end = Math.min(P, seedKnown + frontierAhead);
    for (let piece = seedKnown; piece < end && frontierPieces.length < most; piece++) {
      if ((claimBy[piece] as number) !== -1 && (claimUntil[piece] as number) > now) continue; // a live claim, this child's or another's
      claimBy[piece] = node;
      claimUntil[piece] = now + frontierTtlMs;
      frontierPieces.push(piece);
      frontierClaims++;
    }
  };

  /**
   * A claimed piece reached the seed: the supernode's store 'piece' listener
   * keeps it from the scheduler (no seedHas) while the claim is live, until
   * the claimer announces it or CLAIMED_PIECE_SEED_DELAY_MS passes.
   */
  const seedPiece = (piece: number): void => {
    registryEgressBytes += pieceLen[piece] as number;
    seedKnown++;
    if (frontierOn && (claimBy[piece] as number) !== -1 && (claimUntil[piece] as number) > now) {
      heldBack[piece] = 1;
      heldBackCount++;
      queue.push(now + CLAIMED_PIECE_SEED_DELAY_MS, RELEASE, piece, 0);
      return;
    }
    const t0 = performance.now();
    sched.seedHas(DIGEST, [piece]);
    schedulerMs += performance.now() - t0;
  };

  /** Swarm.releaseHeldBack: the seed offers the piece from now on. */
  const release = (piece: number, byTimer: boolean): void => {
    if ((heldBack[piece] as number) === 0) return;
    heldBack[piece] = 0;
    if (byTimer) releasedByTimer++;
    else releasedByAnnounce++;
    const t0 = performance.now();
    sched.seedHas(DIGEST, [piece]);
    schedulerMs += performance.now() - t0;
  };

  /**
   * One turn of the peer engine's loop (Download.run in
   * services/peer/src/download.ts), run whenever a transfer ends or a nap
   * ends: while the window has room, report queued failures, ask, start what
   * is new. Then: nothing started → nap `pollMs`, doubling to 100 ms while
   * idle; started some and the answer (scheduler's + frontier pieces, counting
   * the ones skipped) filled every free slot → ask again at once; started some
   * but fewer → nap 100 ms. A transfer ending (landed, or every candidate
   * refused) cuts any nap short. A full window waits for a transfer to end.
   */
  const requestMore = (node: number): void => {
    pollVer[node] = (pollVer[node] as number) + 1; // a pending nap is cut short
    const base = node * P;
    for (;;) {
      if ((doneAt[node] as number) >= 0) return;
      const freeSlots = W - (inflight[node] as number);
      if (freeSlots <= 0) return; // the next transfer to end asks again
      const queued = failures[node];
      if (queued !== undefined && queued.length > 0) {
        const t0 = performance.now();
        for (let i = 0; i < queued.length; i += 3) {
          const parent = queued[i] as number;
          const kind = queued[i + 2] === UNREACHABLE ? 'unreachable' : 'busy';
          sched.reportFailure(ids[node] as string, parent === SEED ? 'seed' : (ids[parent] as string), DIGEST, queued[i + 1] as number, kind);
        }
        schedulerMs += performance.now() - t0;
        queued.length = 0;
      }
      let next = nextInOrder[node] as number;
      while (next < P && (have[base + next] as number) === 1) next++;
      nextInOrder[node] = next;
      urgentBuf.length = 0;
      for (let p = next; p < P && urgentBuf.length < params.urgent; p++) {
        if ((have[base + p] as number) === 0 && (asked[base + p] as number) === 0) urgentBuf.push(p);
      }
      scheduleCalls++;
      const t0 = performance.now();
      const assignments = sched.schedule(ids[node] as string, DIGEST, { limit: freeSlots, urgent: urgentBuf });
      schedulerMs += performance.now() - t0;
      let started = 0;
      for (const a of assignments) {
        if ((asked[base + a.piece] as number) === 1 || (have[base + a.piece] as number) === 1) {
          // The engine skips it; the scheduler keeps counting it until its TTL.
          ignoredAssignments++;
          continue;
        }
        const cands = new Int32Array(a.candidates.length);
        a.candidates.forEach((c, i) => {
          cands[i] = c.kind === 'seed' ? SEED : (indexOf.get(c.peerId) as number);
        });
        request(node, a.piece, cands, now + rttMs, false);
        started++;
      }
      let answered = assignments.length;
      if (frontierOn && seedKnown < P && assignments.length < freeSlots) {
        addFrontier(node, freeSlots - assignments.length);
        answered += frontierPieces.length;
        for (const piece of frontierPieces) {
          if ((asked[base + piece] as number) === 1) {
            ignoredAssignments++; // its own expired claim, renewed: still waiting for it
            continue;
          }
          // The seed holds the request until the piece lands, PIECE_WAIT_MS at most (see start).
          request(node, piece, Int32Array.of(SEED), Math.max(now + rttMs, Math.min(seedArrival[piece] as number, now + rttMs + PIECE_WAIT_MS)), true);
          started++;
        }
      }
      if (started === 0) {
        const ms = idleMs[node] as number;
        idleMs[node] = Math.min(IDLE_POLL_MAX_MS, ms * 2);
        queue.push(now + ms, POLL, node, pollVer[node] as number);
        return;
      }
      idleMs[node] = pollMs;
      if (answered < freeSlots) {
        // The answer did not fill the window: wait for a piece to land, at most 100 ms.
        partialNaps++;
        queue.push(now + IDLE_POLL_MAX_MS, POLL, node, pollVer[node] as number);
        return;
      }
    }
  };

  const start = (t: number): void => {
    const child = tChild[t] as number;
    const piece = tPiece[t] as number;
    const cands = tCands[t] as Int32Array;
    const pos = tCandPos[t] as number;
    const parent = cands[pos] as number;
    const parentUps = ups[parent] as number[];
    if (parent !== SEED && (have[parent * P + piece] as number) === 0) throw new Error(`node ${parent} listed for piece ${piece} it lacks`);
    const timedOut = parent === SEED && now < (seedArrival[piece] as number); // a long-poll the piece did not reach in time
    if (timedOut || (parent !== SEED && parentUps.length >= maxUploads)) {
      if (timedOut) longPollTimeouts++;
      else busyRefusals++;
      // Reported with the child's next schedule call, as the engine does.
      (failures[child] ??= []).push(parent, piece, timedOut ? UNREACHABLE : BUSY);
      if (pos + 1 < cands.length) {
        tCandPos[t] = pos + 1;
        queue.push(now + rttMs, START, t, 0);
      } else {
        asked[child * P + piece] = 0;
        inflight[child] = (inflight[child] as number) - 1;
        free.push(t);
        requestMore(child);
      }
      return;
    }
    tParent[t] = parent;
    tRem[t] = pieceLen[piece] as number;
    tRate[t] = 0;
    tLast[t] = now;
    parentUps.push(t);
    (downs[child] as number[]).push(t);
    if (parent === SEED) maxSeedConcurrent = Math.max(maxSeedConcurrent, parentUps.length);
    rerate(parentUps);
    rerate(downs[child] as number[]);
  };

  const finish = (t: number): void => {
    const rem = (tRem[t] as number) - (tRate[t] as number) * (now - (tLast[t] as number));
    tRem[t] = rem;
    tLast[t] = now;
    if (rem > 0.5) {
      queue.push(now + rem / (tRate[t] as number), FINISH, t, bump(t));
      return;
    }
    const parent = tParent[t] as number;
    const child = tChild[t] as number;
    const piece = tPiece[t] as number;
    tVer[t] = (tVer[t] as number) + 1;
    remove(ups[parent] as number[], t);
    remove(downs[child] as number[], t);
    rerate(ups[parent] as number[]);
    rerate(downs[child] as number[]);
    free.push(t);
    const len = pieceLen[piece] as number;
    if (parent === SEED) {
      seedEgressBytes += len;
      seedCopies[piece] = (seedCopies[piece] as number) + 1;
      if ((tFrontier[t] as number) === 1) seedFrontierEgressBytes += len;
    } else {
      peerEgressBytes += len;
    }
    have[child * P + piece] = 1;
    inflight[child] = (inflight[child] as number) - 1;
    haveCount[child] = (haveCount[child] as number) + 1;
    const t0 = performance.now();
    sched.peerHas(ids[child] as string, DIGEST, [piece]);
    schedulerMs += performance.now() - t0;
    // Swarm.schedule: a `have` releases a held-back piece (only its claimer can hold it).
    if ((heldBack[piece] as number) === 1) release(piece, false);
    if (haveCount[child] === P) {
      doneAt[child] = now;
      done++;
    } else {
      requestMore(child);
    }
  };

  // The registry feeds the seed at line rate; every node asks at t = 0.
  let fed = 0;
  for (let i = 0; i < P; i++) {
    fed += pieceLen[i] as number;
    seedArrival[i] = rttMs + fed / B;
    queue.push(seedArrival[i] as number, SEED_PIECE, i, 0);
  }
  for (let i = 0; i < N; i++) queue.push(0, POLL, i, 0);

  const traceStep = (params.traceEvery ?? 0) * lineRateMs;
  let nextTrace = traceStep;
  const trace = (): void => {
    let sumHave = 0;
    let minHave = P;
    let active = 0;
    let rateSum = 0;
    for (let i = 0; i < N; i++) {
      sumHave += haveCount[i] as number;
      minHave = Math.min(minHave, haveCount[i] as number);
      for (const t of downs[i] as number[]) {
        active++;
        rateSum += tRate[t] as number;
      }
    }
    console.log(
      `t=${(now / lineRateMs).toFixed(2)} seedHas=${seedKnown} avgHave=${(sumHave / N).toFixed(1)} minHave=${minHave} done=${done} ` +
        `active=${active} seedUp=${(ups[SEED] as number[]).length} downUtil=${(rateSum / (N * B)).toFixed(2)} seedEgress=${(seedEgressBytes / params.sizeBytes).toFixed(2)}`,
    );
  };

  while (done < N && queue.pop(ev)) {
    now = ev.time;
    if (traceStep > 0 && now >= nextTrace) {
      trace();
      nextTrace += traceStep;
    }
    if (now > horizonMs) throw new Error(`simulation did not finish within ${horizonMs} ms (${done}/${N} nodes done)`);
    events++;
    switch (ev.kind) {
      case SEED_PIECE:
        seedPiece(ev.id);
        break;
      case RELEASE:
        release(ev.id, true);
        break;
      case POLL:
        if (ev.version === pollVer[ev.id]) requestMore(ev.id);
        break;
      case START:
        start(ev.id);
        break;
      case FINISH:
        if (ev.version === tVer[ev.id]) finish(ev.id);
        break;
    }
  }
  if (done < N) throw new Error(`simulation stalled: ${done}/${N} nodes done`);

  return {
    params,
    pieceCount: P,
    pieceSizeBytes: layout.pieceSizeBytes,
    lineRateMs,
    completionMs: doneAt.sort(),
    registryEgressBytes,
    seedEgressBytes,
    peerEgressBytes,
    events,
    scheduleCalls,
    busyRefusals,
    longPollTimeouts,
    ignoredAssignments,
    maxSeedConcurrent,
    seedFrontierEgressBytes,
    seedDuplicatedPieces: seedCopies.reduce((n, c) => n + (c > 1 ? 1 : 0), 0),
    seedExtraCopies: seedCopies.reduce((n, c) => n + Math.max(0, c - 1), 0),
    frontierClaims,
    heldBack: heldBackCount,
    releasedByAnnounce,
    releasedByTimer,
    partialNaps,
    schedulerMs,
    wallMs: performance.now() - wallStart,
  };
}
