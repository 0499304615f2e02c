import { PIECE_WAIT_MS, pieceSpan, systemClock, type Clock, type Digest, type Logger, type ScheduleRequest, type ScheduleResponse } from '@shoal/core';
import type { PieceStoreApi } from '@shoal/store';
import type { PeerTable } from './peer-table.js';
import { fillPoint } from './piece-hold.js';
import type { SchedulerApi } from './scheduler/index.js';

/** Blobs whose pieces the scheduler has been told about; matches the scheduler's own bound. */
const MAX_KNOWN_BLOBS = 10_000;
/**
 * Pieces still on their way from the registry that one child may wait for at
 * the seed (a long-poll). Each such piece goes to one child only, so the seed
 * sends it about once; the others get it from that child.
 */
const FRONTIER_PER_CALL = 4;
/**
 * Frontier claims one child holds at once, over all blobs. Each is a request
 * the child keeps open at the seed; more than its connections to the supernode
 * allow would queue in the child, unseen by the seed, and a piece landing for
 * a claim whose request is not there yet was handed to the scheduler and sent
 * again (bench:swarm: five layers × four claims on eight connections).
 * With the scheduler's seed copies per child (maxSeedDownloadsPerChild) it stays
 * below the child's connections for pieces (PIECE_CONNECTIONS_PER_SUPERNODE).
 * Two, not four: a child holding four consecutive pieces of a layer gets them
 * one after another as they arrive, and at the end of a pull the last ones all
 * sit on one child's uplink while the others wait for them (bench:swarm,
 * N=16, 32 MiB, 10 Mbit/s: 20 s between the last byte from the registry and
 * the median node's last). Spread over more children they travel side by side
 * (the simulator, N=16 at 10 Mbit/s: 64 MiB 1.45 → 1.40 × S/B, 32 MiB 1.72 →
 * 1.60; at 1,000 nodes 1.72 → 1.70; N=4 at 25 Mbit/s 1.38 → 1.42).
 */
const MAX_FRONTIER_CLAIMS_PER_CHILD = 2;
/**
 * Frontier claims of a child that is the blob's only member and already waits
 * for some of its pieces (one node pulling an image on its own). There is
 * nobody to pass pieces on to, and four of 1 MiB in flight on a fast link left
 * it a quarter slower than pulling from the registry directly (bench:swarm,
 * N=1, 400 Mbit/s). With the scheduler's LONE_CHILD_SEED_DOWNLOADS, within the
 * child's connections to the supernode (PIECE_CONNECTIONS_PER_SUPERNODE).
 * Shared out over the blobs still arriving that the child pulls: all eight in
 * the first layer it asked for left the others none, so their pieces crossed
 * the child's link only after they had arrived whole (N=1, 64 MiB in five
 * layers, 10 Mbit/s: bench:swarm 1.13 → 1.09 × S/B against 1.05 direct; the
 * simulator 1.11 → 1.06, and at 32 MiB 1.18 → 1.07).
 */
const MAX_FRONTIER_CLAIMS_ALONE = 8;
/**
 * A child that waits at the seed in one blob and is the only member of another
 * counts as alone there once its oldest claim is this old: by then the others
 * of a swarm that started together have asked (a swarm's first caller is alone
 * only for that moment), and a node pulling an image on its own gets claims in
 * every layer, not only the first it asked for. A blob's held calls look again
 * this long after its first one, so the claims come before its first piece has
 * landed (the simulator, N=1, 64 MiB at 10 Mbit/s: 1.06 → 1.05 × S/B; at
 * 25 Mbit/s 1.11 → 1.08; bench:swarm at 25 Mbit/s: fetch 1.08 twice, against
 * 1.10 and 1.08 without).
 */
const ALONE_AFTER_MS = 1_000;
/**
 * A lone child's claims are shared out over its blobs only where a piece of the
 * blob takes at least this long to arrive from the registry (or its rate is not
 * known yet): there a piece that crosses the child's link only once it has
 * arrived whole comes seconds late. Where pieces arrive faster, the claims
 * pipeline the blob asked for first (the simulator, N=1, 256 MiB at 400 Mbit/s:
 * 1.07 × S/B, against 1.08 shared out).
 */
const SHARE_CLAIMS_FROM_PIECE_MS = 1_000;
/**
 * Frontier claims stay within this many pieces past the seed's fill point, so
 * a claim is served well within its lifetime (the simulator: claiming a whole
 * 1 GiB blob up front at 1,000 nodes doubled completion times and sent 1.87 × S
 * from the seed; 64 ahead: 1.05 × S/B and 1.00 × S).
 */
const FRONTIER_AHEAD = 64;
/**
 * How long a child holds a frontier piece before another child may be given
 * it. As long as the seed holds the child's request for it (PIECE_WAIT_MS):
 * a shorter claim let a second child claim the same piece while the first
 * still waited, and the seed then sent it twice. The claim on the piece
 * arriving now lasts as long as the seed holds its request, which is longer
 * while the blob's bytes keep coming (piece-hold.ts).
 */
const FRONTIER_TTL_MS = PIECE_WAIT_MS;
/**
 * Frontier claims reach no further than the pieces the registry is expected
 * to deliver within this horizon, at the blob's measured arrival rate: a claim
 * past it would outlive the seed's hold on the request (PIECE_WAIT_MS) on a
 * slow registry link, and come back as a failure.
 */
const FRONTIER_HORIZON_MS = PIECE_WAIT_MS / 2;
/** Frontier claims reach at least this many pieces ahead, whatever the rate. */
const FRONTIER_MIN_AHEAD = 8;
/**
 * Held schedule calls one change in a blob's swarm wakes (see Swarm.changed).
 * The simulator: 4 gives the same completion times as 8 (N=16: 1.47–1.50 × S/B;
 * 1,000 nodes: 1.77 against 1.80) for half the scheduler passes; 2 is slower.
 */
const WAKES_PER_CHANGE = 4;
/** Schedule calls one blob may hold waiting at once (each is an open request; beyond, answers come at once). */
export const MAX_WAITERS_PER_BLOB = 10_000;
/**
 * A claimed piece that lands at the seed is kept from the scheduler until its
 * claimer announces it, or until the seed's copy to the claimer has made no
 * progress for this long (it failed, or the claimer took it and then said
 * nothing): meanwhile others are scheduled to fetch it from the claimer, not
 * from the seed (the simulator showed 1.42 × S of seed egress at 1,000 nodes
 * without this). Measured from progress, not from the landing: on a slow link
 * the copy to the claimer takes many seconds, and releasing it early sent the
 * same piece from the seed up to four times (bench:swarm, 25 Mbit/s).
 */
const CLAIMED_PIECE_SEED_DELAY_MS = 2_000;

export interface SwarmComponents {
  log: Logger;
  store: PieceStoreApi & { on(event: 'piece', listener: (digest: Digest, index: number) => void): unknown };
  scheduler: SchedulerApi;
  peers: PeerTable;
  /** How long ago a byte of a blob last came from its registry; undefined when it is not being fetched (BlobTasks.fetchQuietMs). */
  fetchQuietMs?: (digest: Digest) => number | undefined;
  /** @default systemClock */
  clock?: Clock;
}

/**
 * Glue between the supernode's parts and the pure scheduler: membership from
 * the peer table, the seed's pieces from the store as they are verified,
 * peers' pieces and failures from their schedule calls and announcements.
 */
export class Swarm {
  private readonly log: Logger;
  private readonly store: PieceStoreApi;
  private readonly scheduler: SchedulerApi;
  private readonly peers: PeerTable;
  /** Insertion-ordered: the oldest is forgotten first, as the scheduler does (LRU). */
  private readonly known = new Map<Digest, number>();
  /** Per blob still arriving at the seed: piece → the child waiting for it there, since when, and until when. */
  private readonly frontier = new Map<Digest, Map<number, { peerId: string; sinceMs: number; untilMs: number }>>();
  /** Per blob still arriving at the seed: when its first piece landed and how many have since (its arrival rate). Bounded like `frontier`. */
  private readonly arrivals = new Map<Digest, { firstMs: number; count: number }>();
  /** Per blob: schedule calls holding their answer until something changes (see waitForChange). */
  private readonly waiters = new Map<Digest, Set<() => void>>();
  /** The same for the calls of the blob's chain members, every one woken on each change (see `changed`). */
  private readonly chainWaiters = new Map<Digest, Set<() => void>>();
  /** Claimed pieces that reached the seed but are not yet offered by it (see CLAIMED_PIECE_SEED_DELAY_MS). */
  private readonly heldBack = new Map<string, NodeJS.Timeout>();
  private readonly clock: Clock;
  private readonly fetchQuietMs: (digest: Digest) => number | undefined;

  /** Called for every report of bad bytes (a metric): `parent` is the kind of parent that sent them. */
  onBadPiece: (parent: 'peer' | 'supernode') => void = () => undefined;
  /** Called with the bytes of the pieces a peer reports it verified (metrics and the status API). */
  onPeerPieces: (peerId: string, bytes: number) => void = () => undefined;

  constructor(components: SwarmComponents) {
    this.log = components.log.child({ module: 'swarm' });
    this.store = components.store;
    this.scheduler = components.scheduler;
    this.peers = components.peers;
    this.clock = components.clock ?? systemClock;
    this.fetchQuietMs = components.fetchQuietMs ?? (() => undefined);
    components.store.on('piece', (digest, index) => {
      if (!this.known.has(digest)) return;
      this.countArrival(digest);
      const claim = this.frontier.get(digest)?.get(index);
      // Pieces land in order: this one was the piece arriving, until now.
      if (claim !== undefined) this.extendArrivingClaim(digest, claim);
      if (claim !== undefined && claim.untilMs > this.clock.now()) {
        const key = `${digest}/${index}`;
        const timer = setTimeout(() => {
          this.releaseHeldBack(digest, index);
          this.changed(digest);
        }, CLAIMED_PIECE_SEED_DELAY_MS);
        timer.unref();
        this.heldBack.set(key, timer);
        return;
      }
      this.scheduler.seedHas(digest, [index]);
      this.changed(digest);
    });
  }

  private countArrival(digest: Digest): void {
    const a = this.arrivals.get(digest);
    if (a !== undefined) {
      a.count++;
      return;
    }
    this.arrivals.set(digest, { firstMs: this.clock.now(), count: 1 });
    while (this.arrivals.size > MAX_KNOWN_BLOBS) {
      const oldest = this.arrivals.keys().next().value;
      if (oldest === undefined) break;
      this.arrivals.delete(oldest);
    }
  }

  /** Whether a piece of `digest` takes SHARE_CLAIMS_FROM_PIECE_MS or more to arrive, or too few have arrived to tell. */
  private arrivesSlowly(digest: Digest): boolean {
    const a = this.arrivals.get(digest);
    if (a === undefined || a.count < 2) return true;
    return (this.clock.now() - a.firstMs) / (a.count - 1) >= SHARE_CLAIMS_FROM_PIECE_MS;
  }

  /** How far past the seed's fill point frontier claims may reach for `digest` (see FRONTIER_HORIZON_MS). */
  private frontierAhead(digest: Digest): number {
    const a = this.arrivals.get(digest);
    const elapsedMs = a === undefined ? 0 : this.clock.now() - a.firstMs;
    if (a === undefined || a.count < 2 || elapsedMs <= 0) return FRONTIER_MIN_AHEAD;
    const perMs = (a.count - 1) / elapsedMs;
    return Math.max(FRONTIER_MIN_AHEAD, Math.min(FRONTIER_AHEAD, Math.ceil(perMs * FRONTIER_HORIZON_MS)));
  }

  /** Makes sure the scheduler knows a blob the store holds (complete or in flight). */
  private know(digest: Digest): boolean {
    const record = this.store.get(digest);
    if (record === undefined || record.layout.pieceCount === 0) return false;
    if (this.known.has(digest)) {
      this.known.delete(digest);
      this.known.set(digest, record.layout.pieceCount);
      this.scheduler.addBlob(digest, record.layout.pieceCount); // refreshes its LRU position
      return true;
    }
    this.scheduler.addBlob(digest, record.layout.pieceCount);
    const held: number[] = [];
    for (let i = 0; i < record.layout.pieceCount; i++) if (this.store.hasPiece(digest, i)) held.push(i);
    this.scheduler.seedHas(digest, held);
    this.known.set(digest, record.layout.pieceCount);
    while (this.known.size > MAX_KNOWN_BLOBS) {
      const oldest = this.known.keys().next().value;
      if (oldest === undefined) break;
      this.known.delete(oldest);
    }
    return true;
  }

  /**
   * The seed is sending `piece` of `digest` to a peer: `progress` while bytes
   * move, `done` when all were handed to the socket, `failed` when the send
   * broke off. Keeps a claimed piece held back while its copy to the claimer
   * moves, and tells the scheduler the seed's copies are healthy.
   */
  seedSending(digest: Digest, piece: number, state: 'progress' | 'done' | 'failed'): void {
    const key = `${digest}/${piece}`;
    const held = this.heldBack.get(key);
    if (held !== undefined) {
      if (state === 'failed') {
        this.releaseHeldBack(digest, piece);
        this.changed(digest);
      } else held.refresh();
    }
    if (state !== 'failed') this.scheduler.seedProgress(digest, piece);
  }

  /** Offers a held-back piece to the scheduler; the caller wakes held schedule calls (changed) once for all it released. */
  private releaseHeldBack(digest: Digest, piece: number): void {
    const key = `${digest}/${piece}`;
    const timer = this.heldBack.get(key);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.heldBack.delete(key);
    this.scheduler.seedHas(digest, [piece]);
  }

  /** `serves: false` until the peer's advertised URL is proven (registration.ts): it downloads, but is nobody's parent. */
  peerJoined(peerId: string, url: string, zone: string | undefined, serves = true): void {
    this.scheduler.addPeer({ peerId, url, zone, serves });
  }

  peerLeft(peerId: string): void {
    this.scheduler.removePeer(peerId);
    for (const digest of new Set([...this.waiters.keys(), ...this.chainWaiters.keys()])) this.changed(digest, true);
  }

  /**
   * A peer verified pieces: announced over its WebSocket as each lands (or its
   * inventory after a restart), and again with its next schedule call. Others
   * may fetch them from it at once; a claimed piece stops being held back.
   */
  peerHas(peerId: string, digest: Digest, pieces: readonly number[]): void {
    if (!this.know(digest)) return;
    const record = this.store.get(digest);
    if (record === undefined) return;
    const added = this.scheduler.peerHas(peerId, digest, pieces.filter((p) => p < record.layout.pieceCount));
    if (added.length === 0) return;
    let bytes = 0;
    for (const piece of added) bytes += pieceSpan(record.layout, piece).length;
    this.onPeerPieces(peerId, bytes);
    // The claimer has it: from now on the seed is only the last resort for it.
    const claims = this.frontier.get(digest);
    for (const piece of added) {
      this.releaseHeldBack(digest, piece);
      if (claims?.get(piece)?.peerId === peerId) claims.delete(piece);
    }
    this.changed(digest);
  }

  /**
   * A peer's copies of these pieces began to arrive, and it passes them on as
   * they come: children may be sent to it for them from now on.
   */
  peerArriving(peerId: string, digest: Digest, pieces: readonly number[]): void {
    if (!this.know(digest)) return;
    const record = this.store.get(digest);
    if (record === undefined) return;
    const added = this.scheduler.peerArriving(peerId, digest, pieces.filter((p) => p < record.layout.pieceCount));
    if (added.length > 0) this.changed(digest);
  }

  /** A peer's copies of these pieces failed before they matched: it is no longer a parent for them. */
  peerArrivalFailed(peerId: string, digest: Digest, pieces: readonly number[]): void {
    if (this.know(digest)) this.scheduler.peerArrivalFailed(peerId, digest, pieces);
  }

  /** A peer evicted or gave up a blob: children are no longer sent to it for its pieces. */
  peerDropped(peerId: string, digest: Digest): void {
    if (this.know(digest)) this.scheduler.peerDropped(peerId, digest);
  }

  /**
   * Resolves when something changed in `digest`'s swarm that may let the
   * scheduler assign more (a piece landed somewhere, a slot was freed), or
   * after `ms`, or when `signal` aborts. For schedule calls that hold their
   * answer (ScheduleRequest.waitMs) instead of being asked again and again.
   * False, at once, when the call cannot wait (aborted, or the blob already
   * holds MAX_WAITERS_PER_BLOB calls): its caller answers now instead.
   * `peerId`'s call is woken on every change while it is a chain member.
   */
  async waitForChange(digest: Digest, ms: number, signal: AbortSignal, peerId?: string): Promise<boolean> {
    if (signal.aborted) return false;
    const held = (this.waiters.get(digest)?.size ?? 0) + (this.chainWaiters.get(digest)?.size ?? 0);
    if (held >= MAX_WAITERS_PER_BLOB) return false;
    const map = peerId !== undefined && this.scheduler.chainSlot(peerId, digest) !== undefined ? this.chainWaiters : this.waiters;
    let waiting = map.get(digest);
    if (waiting === undefined) {
      waiting = new Set();
      map.set(digest, waiting);
    }
    const set = waiting;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        set.delete(done);
        if (set.size === 0 && map.get(digest) === set) map.delete(digest);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      signal.addEventListener('abort', done, { once: true });
      set.add(done);
    });
    return true;
  }

  /**
   * Wakes the calls that have waited longest (WAKES_PER_CHANGE; all of them
   * with `all`), and every chain member's. One change serves a few children at
   * most (a new holder has a few upload slots); waking every held call of a
   * blob made each change cost a schedule pass per waiting node, N² per pull.
   * A chain is short (the scheduler's chainMembers), and the one call a change
   * serves there is the next member's, which need not be among the oldest.
   * A woken call that waits again queues behind the others.
   */
  private changed(digest: Digest, all = false): void {
    const chain = this.chainWaiters.get(digest);
    if (chain !== undefined) for (const wake of chain) wake();
    const waiting = this.waiters.get(digest);
    if (waiting === undefined) return;
    // Oldest first (a Set iterates in insertion order); a woken call leaves the
    // set as it is woken, which iteration allows. No copy: that was O(waiters)
    // per change.
    let woken = 0;
    for (const wake of waiting) {
      if (!all && woken++ >= WAKES_PER_CHANGE) break;
      wake();
    }
  }

  /** Answers a peer's schedule call; undefined when the supernode does not know the blob. */
  schedule(digest: Digest, request: ScheduleRequest): ScheduleResponse | undefined {
    if (!this.know(digest)) return undefined;
    const record = this.store.get(digest);
    if (record === undefined) return undefined;
    const { peerId } = request;
    // A schedule call also proves the peer is alive. One that arrives before the peer's
    // WebSocket registration registers it first (routes/schedule.ts, through the Registrar).
    if (this.peers.get(peerId) !== undefined) this.peers.heartbeat(peerId);
    for (const f of request.failures ?? []) {
      if (f.piece < record.layout.pieceCount) this.scheduler.reportFailure(peerId, f.parentId, digest, f.piece, f.kind);
      if (f.kind === 'bad-piece') this.onBadPiece(f.parentId === 'seed' ? 'supernode' : 'peer');
      if (f.kind === 'bad-piece') this.log.warn({ digest, reporter: peerId, parent: f.parentId, piece: f.piece }, 'peer reported bad bytes from a parent');
    }
    // A failure ends an assignment: its parent's slot is free for others.
    if ((request.failures ?? []).length > 0) this.changed(digest);
    if ((request.have ?? []).length > 0) this.peerHas(peerId, digest, request.have ?? []);
    const assignments: ScheduleResponse['assignments'] = [];
    if (request.limit > 0) {
      const urgent = (request.urgent ?? []).filter((p) => p < record.layout.pieceCount);
      for (const a of this.scheduler.schedule(peerId, digest, { limit: request.limit, urgent })) {
        // Unknown only while the piece still arrives here and a peer passes its copy on as it
        // comes: the child then asks for the hash (routes/blobs.ts) to check that copy.
        const sha256 = record.pieceSha256[a.piece] ?? undefined;
        const candidates = a.candidates.map((c) => (c.kind === 'seed' ? { kind: 'seed' as const } : { kind: 'peer' as const, peerId: c.peerId, url: c.url }));
        assignments.push(sha256 === undefined ? { piece: a.piece, candidates } : { piece: a.piece, sha256, candidates });
      }
    }
    // In a chain only its head waits at the seed for pieces still arriving, within its window.
    const chain = record.complete ? undefined : this.scheduler.chainSlot(peerId, digest);
    const room = Math.min(request.limit - assignments.length, chain?.head === false ? 0 : (chain?.room ?? Infinity));
    if (!record.complete && room > 0) this.addFrontier(digest, record.layout.pieceCount, peerId, room, assignments);
    else if (record.complete) {
      this.frontier.delete(digest);
      this.arrivals.delete(digest);
    }
    // Matched to its digest is enough for a peer to take the piece hashes as certified:
    // the datasync and rename that make the copy complete here can take seconds, and a
    // node that finished meanwhile would hash the whole blob itself.
    return { assignments, seedComplete: record.complete || this.store.isDigestVerified(digest) };
  }

  /**
   * While the seed is still filling a blob, a child with free slots waits at
   * the seed for the next pieces nobody has yet, instead of polling: the
   * seed answers as soon as each one lands (it holds piece requests open).
   */
  private addFrontier(digest: Digest, pieceCount: number, peerId: string, room: number, out: ScheduleResponse['assignments']): void {
    let claims = this.frontier.get(digest);
    if (claims === undefined) {
      claims = new Map();
      this.frontier.set(digest, claims);
      // A child alone in the blob, with nothing to take yet, waits in a held call until a
      // piece lands (a piece's time at a fifth of B); once it counts as alone it may wait
      // at the seed for the piece arriving now instead (see ALONE_AFTER_MS).
      const aloneCheck = setTimeout(() => {
        if (this.frontier.get(digest) === claims && this.scheduler.members(digest) <= 1) this.changed(digest);
      }, ALONE_AFTER_MS);
      aloneCheck.unref();
      // Bounded like `known`: blobs still arriving are few, but never let this grow.
      while (this.frontier.size > MAX_KNOWN_BLOBS) {
        const oldest = this.frontier.keys().next().value;
        if (oldest === undefined) break;
        this.frontier.delete(oldest);
      }
    }
    const now = this.clock.now();
    const firstMissing = fillPoint(this.store, digest, pieceCount);
    const arriving = claims.get(firstMissing);
    if (arriving !== undefined) this.extendArrivingClaim(digest, arriving);
    // From here on every claim of this blob is live.
    for (const [piece, claim] of claims) if (claim.untilMs <= now) claims.delete(piece);
    const mine = this.claimsOf(peerId, digest, now);
    // Alone: the blob's only member, already waiting at the seed for some of its
    // pieces, or for a while for another blob's (see ALONE_AFTER_MS).
    const alone = this.scheduler.members(digest) <= 1 && (mine.inBlob > 0 || mine.oldestSinceMs <= now - ALONE_AFTER_MS);
    room = Math.min(room, FRONTIER_PER_CALL, (alone ? MAX_FRONTIER_CLAIMS_ALONE : MAX_FRONTIER_CLAIMS_PER_CHILD) - mine.total);
    if (alone && this.arrivesSlowly(digest)) room = Math.min(room, Math.max(1, Math.floor(MAX_FRONTIER_CLAIMS_ALONE / this.arrivingBlobsOf(peerId, digest))) - mine.inBlob);
    const taken = new Set(out.map((a) => a.piece));
    let added = 0;
    const end = Math.min(pieceCount, firstMissing + this.frontierAhead(digest));
    for (let piece = firstMissing; piece < end && added < room; piece++) {
      // Claimed by another child, or by this one already waiting for it.
      if (this.store.hasPiece(digest, piece) || taken.has(piece) || claims.has(piece)) continue;
      claims.set(piece, { peerId, sinceMs: now, untilMs: now + FRONTIER_TTL_MS });
      out.push({ piece, candidates: [{ kind: 'seed' }] });
      added++;
    }
  }

  /**
   * The seed holds the request for the piece arriving now until FRONTIER_TTL_MS
   * pass without a byte of its blob (piece-hold.ts), so its claim lasts as long:
   * ended at 30 s, it let a second child claim the piece while the seed still
   * held the first one's request, and both were sent it.
   */
  private extendArrivingClaim(digest: Digest, claim: { untilMs: number }): void {
    const quietMs = this.fetchQuietMs(digest);
    if (quietMs !== undefined) claim.untilMs = Math.max(claim.untilMs, this.clock.now() - quietMs + FRONTIER_TTL_MS);
  }

  /**
   * Live frontier claims of one child over all blobs still arriving (and in
   * `digest`), and when the oldest of them was made. A claim lasts until its child
   * announces the piece or FRONTIER_TTL_MS passes (longer for the piece arriving
   * now, see extendArrivingClaim): the child's request stays open while the piece
   * crosses the link.
   */
  private claimsOf(peerId: string, digest: Digest, now: number): { total: number; inBlob: number; oldestSinceMs: number } {
    let total = 0;
    let inBlob = 0;
    let oldestSinceMs = Infinity;
    for (const [d, claims] of this.frontier) {
      for (const claim of claims.values()) {
        if (claim.peerId !== peerId || claim.untilMs <= now) continue;
        total++;
        if (d === digest) inBlob++;
        oldestSinceMs = Math.min(oldestSinceMs, claim.sinceMs);
      }
    }
    return { total, inBlob, oldestSinceMs };
  }

  /** Blobs still arriving at the seed that the child pulls (is a member of), `digest` included. */
  private arrivingBlobsOf(peerId: string, digest: Digest): number {
    let count = 1;
    for (const d of this.frontier.keys()) {
      if (d !== digest && this.scheduler.isMember(peerId, d) && this.store.get(d)?.complete === false) count++;
    }
    return count;
  }
}
