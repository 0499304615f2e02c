import type {
  BlobCopies,
  ChainSlot,
  Clock,
  FailureKind,
  ParentCandidate,
  PieceAssignment,
  SchedulerApi,
  SchedulerComponents,
  SchedulerInit,
  SchedulerStats,
} from './types.js';

/*
 * Why one file of ~1,150 lines: the scheduler is one data structure (per-blob
 * typed arrays, per-member bitsets, one assignment FIFO) whose invariants every
 * method keeps together; split, each part would need the others' internals.
 * About a third of it is these notes and the comments beside each rule.
 *
 * Implementation notes. The policy is the contract in types.ts; where it
 * leaves room, this implementation decides as follows (each choice was tuned
 * with the swarm simulator in load-tests/src/simulate.ts):
 *
 * - Super-seeding is strict: a piece on its way from the seed that no peer
 *   holds yet is postponed even when the child has nothing else to fetch; it
 *   is duplicated only after the copies in flight have had their patience
 *   (SEED_COPY_PATIENCE_DIVISOR). Handing it out "when nothing else is
 *   available", the contract's letter, fills every seed slot with copies of
 *   piece 0 at swarm start and made 100 simulated nodes 1.9 × S/B instead of 1.4.
 * - Fair shares: a child gets at most maxUploadsPerPeer assignments to
 *   parents that are already busy (one fewer in a swarm of LARGE_SWARM_MEMBERS
 *   or more); more only from idle parents (and the seed only if idle). Without
 *   this, children that ask most often (right after each completion) hoard
 *   upload slots and the rest starve.
 * - When holders exist but all are full, the seed is not used: they free up
 *   within a piece time, and the seed's link is kept for pieces only it has.
 * - A parent's last upload slot goes only to a rare piece (RARE_PIECE_HOLDERS
 *   holders or fewer), so a piece that just reached its first holder is passed
 *   on at once instead of waiting behind pieces others could serve.
 * - The seed gives one child few copies at once (maxSeedDownloadsPerChild):
 *   a copy queued in the child moves no bytes and would look dead. A child
 *   that is a blob's only member and asks again has nobody to share with: it
 *   may hold LONE_CHILD_SEED_DOWNLOADS.
 * - A child's share of busy parents counts its assignments in every blob.
 * - Except for a starving child: its first urgent piece (the one its reader
 *   is blocked on), when it has nothing in flight for the blob, may take one
 *   upload slot past a holder's cap. Without it, at N=16 on real containerd,
 *   freed slots always went to children whose pieces had just landed, a
 *   blocked reader got nothing for 17 s and containerd fell back to the
 *   registry (3.7–8.7 × S of registry egress; 1.00 × S with it). The
 *   simulator's price: p50 1.156 → 1.174 × S/B at 1,000 nodes.
 *   The seed steps in when no live peer holds the piece, or every holder seen
 *   is excluded for this child (penalised, quarantined).
 * - The seed keeps the last candidate slot when it holds the piece, so a child
 *   always has the last resort at hand.
 * - Failure reports: 'bad-piece' quarantines a peer for everybody (the seed
 *   never: it verifies every piece itself; its reporter alone avoids it);
 *   'busy' and 'missing' avoid the parent for BUSY_PENALTY_MS only (it is
 *   healthy: full, or its copy not there yet); other kinds for
 *   failurePenaltyMs. A report ends the child's assignment for the piece.
 * - A peer whose copy of a piece is arriving (peerArriving) is a holder like
 *   any other: it passes the bytes on as they come. Its own assignment for the
 *   piece stays in flight (its parent's upload goes on) until peerHas; a copy
 *   that fails (peerArrivalFailed) stops it being a holder.
 * - Unknown blobs (addBlob not called, or forgotten) and unknown peers are
 *   ignored by every call; the peer id 'seed' is reserved.
 *
 * Data structures, all per blob and compact:
 *
 * - per piece: counters in typed arrays (holders, in-flight copies, in-flight
 *   seed copies, when the seed copies began), the seed's bit, and a growable
 *   Int32Array of holder slots: ~32 bytes per piece + 4 bytes (up to 8 with
 *   growth slack) per (peer, piece) held;
 * - per (peer, blob): a member record with three bitsets, pieces held, pieces
 *   in flight and pieces arriving (3 × pieceCount / 8 bytes), plus ~200 bytes;
 * - candidates are sampled from the holder list (at most HOLDER_PROBES probes
 *   per piece, "power of d choices"), never sorted;
 * - assignments sit in one FIFO in expiry order (the TTL is constant), popped
 *   lazily by every call, so expiry needs no timer; completed ones stay as
 *   tombstones until they outnumber live ones, then the FIFO is compacted;
 * - a removed peer leaves tombstone slots in holder lists, swap-removed when a
 *   probe meets them, swept by a rebuild once dead slots outnumber live ones.
 *
 * Bounds: blobs ≤ maxBlobs, peers ≤ MAX_PEERS, pieces per blob ≤
 * MAX_PIECES_PER_BLOB, live assignments ≤ peers × MAX_INFLIGHT_PER_CHILD per
 * blob (and each pins an upload slot: ≤ peers × (maxUploadsPerPeer + 1) +
 * maxSeedUploads of them to busy parents), the FIFO ≤ 2 × live + 1,024,
 * penalties ≤ MAX_PENALTIES_PER_CHILD per peer, quarantine ≤ MAX_QUARANTINED.
 * For scale: 10,000 peers on a 512-piece blob, each holding half of it, take
 * ~27 MB (scheduler-scale.test.ts); a fully replicated 256-piece blob on
 * 10,000 peers 13–23 MB. maxBlobs should be chosen with that in mind.
 *
 * Time: a schedule call is one pass over the child's bitsets (8 pieces per
 * byte held) plus, per piece tried, up to HOLDER_PROBES probes; at most
 * budget + MAX_FAILED_PICKS pieces are tried. Measured: about 27 µs per call
 * on average in a simulated swarm of 10,000 peers (held calls included), ~60 µs
 * in scheduler-scale.test.ts (10,000 peers × 512 pieces, parents filling up).
 */

/** Defaults of {@link SchedulerInit} (see types.ts). */
export const DEFAULT_CANDIDATES_PER_PIECE = 3;
export const DEFAULT_MAX_UPLOADS_PER_PEER = 4;
/**
 * Few, so that each copy crosses the supernode's link quickly and its child can
 * pass it on: 64 copies at once on a 25 Mbit/s link took ~20 s each (bench:swarm).
 * Eight flows still fill any link the supernode has.
 */
export const DEFAULT_MAX_SEED_UPLOADS = 8;
export const DEFAULT_MAX_SEED_DOWNLOADS_PER_CHILD = 2;
/** 30 s. */
export const DEFAULT_FAILURE_PENALTY_MS = 30_000;
/** 5 min. */
export const DEFAULT_QUARANTINE_MS = 300_000;
/** 20 s. */
export const DEFAULT_ASSIGNMENT_TTL_MS = 20_000;
export const DEFAULT_MAX_BLOBS = 10_000;
/** Chains are off unless asked for (`shoal supernode --chain-members`): see "A chain" in docs/benchmarks.md. */
export const DEFAULT_CHAIN_MEMBERS = 0;
/**
 * The longest chain: every hop adds its latency, and a chain member's held
 * call is woken on every change in its swarm. In the model a 64-member chain
 * with 100 ms hops took 1.40 × S/B, against 1.20 with none.
 */
export const MAX_CHAIN_MEMBERS = 64;
/**
 * Two pieces in flight per chain member: one crossing the link while the next
 * is asked for. In the model's ideal chain (N = 16, 25 Mbit/s) a window of 1
 * gave 1.186 × S/B and 4 gave 1.226, against 1.197: more pieces at once share
 * each link, and each reaches the next member later.
 */
export const DEFAULT_CHAIN_WINDOW = 2;

/**
 * Peers known at most. The supernode's PeerTable keeps fewer (20,000) and calls
 * removePeer for the ones it forgets; beyond this bound, addPeer forgets the
 * least recently added peer.
 */
export const MAX_PEERS = 65_536;
/**
 * Pieces per blob at most (1 TiB at the 8 MiB maximum piece size; pieceLayout
 * gives ≤ 256 pieces to any blob up to 2 GiB). Headroom: the wire format takes
 * blobs of at most MAX_BLOB_SIZE_BYTES (64 GiB, 8,192 pieces), and the proxy
 * sends larger ones to the registry.
 */
export const MAX_PIECES_PER_BLOB = 131_072;
/**
 * Assignments one child may hold in flight for one blob. Only the first
 * maxUploadsPerPeer of them (one fewer in a large swarm, LARGE_SWARM_MEMBERS)
 * may go to busy parents; the rest only to idle ones (see `assign`).
 */
export const MAX_INFLIGHT_PER_CHILD = 64;
/**
 * Live members of a blob from which a child's share of busy parents is one
 * below a parent's cap (maxUploadsPerPeer − 1). Each piece a child fetches
 * shares the child's downlink with the others in flight: with fewer at once,
 * each crosses sooner and is passed on sooner, and a swarm this large has
 * parents enough to keep every uplink busy with them. The simulator, 64 MiB:
 * p50 1.29 → 1.26–1.27 × S/B at N = 16 (25 and 10 Mbit/s), 1.30 → 1.28 at 12,
 * 1.29 → 1.25 at 1,000. A smaller swarm needs every request its few parents
 * can take: with the lower share N = 4 and 8 took 0.02–0.05 × S/B longer.
 */
export const LARGE_SWARM_MEMBERS = 10;
/** Entries of `urgent` looked at per call. */
export const MAX_URGENT = 64;
/** Holder-list probes per piece when choosing candidates. */
export const HOLDER_PROBES = 16;
/** Parents one child can have penalised at once (oldest forgotten first). */
export const MAX_PENALTIES_PER_CHILD = 256;
/** Peers quarantined for bad bytes at once (oldest forgotten first). */
export const MAX_QUARANTINED = 4_096;
/**
 * A 'busy' parent is healthy but full, a 'missing' one's copy not there yet:
 * the child avoids it only this long (or failurePenaltyMs if shorter), not the
 * full failure penalty.
 */
export const BUSY_PENALTY_MS = 1_000;
/**
 * Super-seeding patience: while a piece is on its way from the seed and no peer
 * holds it yet, a child with nothing else to fetch gets another seed copy only
 * after the copies in flight have each gone assignmentTtlMs / 8 (2.5 s by
 * default) without progress: the supernode reports every copy whose bytes
 * move (seedProgress), so a healthy copy is never duplicated however slow the
 * link, while a silently dead one does not hold up the swarm for a whole TTL.
 */
export const SEED_COPY_PATIENCE_DIVISOR = 8;
/**
 * A piece with at most this many holders is rare: only rare pieces may take a
 * parent's last upload slot. A parent busy serving pieces others also hold
 * would otherwise keep a piece only it has waiting: at N=16 and 10 Mbit/s the
 * second copy of a freshly landed piece left its first holder 6 s after it
 * arrived there, and the swarm's tail stretched by as much.
 */
export const RARE_PIECE_HOLDERS = 2;
/**
 * Seed copies in flight for a child that is a blob's only member (see
 * `assign`). With the frontier claims of a child alone (swarm.ts), within the
 * child's 16 connections to the supernode for pieces.
 */
export const LONE_CHILD_SEED_DOWNLOADS = 8;
/** `parentId` that names the supernode's cache; no peer may use it. */
export const SEED_ID = 'seed';

const SEED_CANDIDATE: ParentCandidate = Object.freeze({ kind: 'seed' });
/** Sort key = class × KEY_CLASS + rarity, then × PIECE_SPACE + index. */
const PIECE_SPACE = MAX_PIECES_PER_BLOB;
const KEY_CLASS = 1 << 30;
/**
 * Pieces one call may try and fail to place (every eligible holder full or
 * excluded) beyond its budget: the rest of the list is then left for the next
 * call. Keeps a call O(pieceCount + MAX_FAILED_PICKS × HOLDER_PROBES). Each
 * probe is a random read of a peer's record, a cache miss in a large swarm:
 * at 10,000 simulated nodes 64 failed picks cost the scheduler 9.4 CPU-s per
 * second, 8 cost 5.1, with the same completion times (16 to 10,000 nodes).
 */
export const MAX_FAILED_PICKS = 8;
/** The same for a child's extra pieces (idle parents only), usually none to find. */
export const MAX_FAILED_EXTRA_PICKS = 2;
/** Extractions done by linear scans before the rest of the keys are sorted. */
const LINEAR_PICKS = 4;
/** Rank penalty of a parent outside the child's zone (more than any upload count). */
const ZONE_OTHER = 1 << 24;

interface PeerRec {
  readonly peerId: string;
  readonly candidate: ParentCandidate;
  readonly zone: string | undefined;
  /** Named as a parent; false while its advertised URL is not yet proven (it still downloads). */
  serves: boolean;
  /** Live assignments naming this peer as first candidate, over all blobs. */
  uploads: number;
  /** Live assignments of this peer as a child with the seed as first candidate, over all blobs. */
  seedDownloads: number;
  /** Live assignments of this peer as a child, over all blobs (its fair share of parents' slots). */
  downloads: number;
  removed: boolean;
  readonly blobs: Set<BlobState>;
  /** parentId → penalty end (ms), for parents this peer reported as a child. */
  penalties: Map<string, number> | undefined;
}

interface Member {
  readonly peer: PeerRec;
  slot: number;
  /** Bit i: holds piece i. Padding bits past pieceCount are set, so scans skip them. */
  readonly have: Uint8Array;
  /** Bit i: piece i is assigned to this child in flight. */
  readonly pending: Uint8Array;
  /** Bit i: piece i is arriving here (peerArriving): `have` is set too, until it matches or fails. */
  readonly arriving: Uint8Array;
  /** This child's live assignments in this blob (≤ MAX_INFLIGHT_PER_CHILD). */
  readonly assignments: Assignment[];
}

interface Assignment {
  readonly blob: BlobState;
  readonly child: Member;
  readonly piece: number;
  /** First candidate; undefined = the seed. */
  readonly parent: PeerRec | undefined;
  /** Pushed back (and the assignment queued again) while a seed copy of the piece progresses. */
  expiresAtMs: number;
  live: boolean;
}

class BlobState {
  readonly seedHave: Uint8Array;
  readonly holderCount: Int32Array;
  readonly inflightCount: Int32Array;
  readonly seedInflight: Int32Array;
  /** When the piece's current run of seed copies began (ms). */
  readonly seedCopySince: Float64Array;
  /** Per piece: member slots, possibly including dead ones (tombstones); length in holderLen. */
  readonly holders: Array<Int32Array | undefined>;
  readonly holderLen: Int32Array;
  members: Array<Member | undefined> = [];
  readonly byPeer = new Map<PeerRec, Member>();
  liveMembers = 0;
  deadSlots = 0;

  constructor(
    readonly digest: string,
    readonly pieceCount: number,
  ) {
    this.seedHave = new Uint8Array((pieceCount + 7) >> 3);
    this.holderCount = new Int32Array(pieceCount);
    this.inflightCount = new Int32Array(pieceCount);
    this.seedInflight = new Int32Array(pieceCount);
    this.seedCopySince = new Float64Array(pieceCount);
    this.holders = new Array<Int32Array | undefined>(pieceCount).fill(undefined);
    this.holderLen = new Int32Array(pieceCount);
  }

  seedHas(piece: number): boolean {
    return ((this.seedHave[piece >> 3] as number) & (1 << (piece & 7))) !== 0;
  }

  pushHolder(piece: number, slot: number): void {
    const len = this.holderLen[piece] as number;
    let list = this.holders[piece];
    if (list === undefined) {
      list = new Int32Array(4);
      this.holders[piece] = list;
    } else if (len === list.length) {
      const grown = new Int32Array(len * 2);
      grown.set(list);
      list = grown;
      this.holders[piece] = list;
    }
    list[len] = slot;
    this.holderLen[piece] = len + 1;
  }

  /** Renumbers live members densely and rebuilds holder lists without tombstones. */
  compact(): void {
    const live: Member[] = [];
    for (const m of this.members) {
      if (m === undefined) continue;
      m.slot = live.length;
      live.push(m);
    }
    this.members = live;
    this.deadSlots = 0;
    this.holderLen.fill(0);
    for (const m of live) {
      const have = m.have;
      for (let p = 0; p < this.pieceCount; p++) {
        if (((have[p >> 3] as number) & (1 << (p & 7))) !== 0) this.pushHolder(p, m.slot);
      }
    }
  }
}

/** Bits of a fresh bitset for `count` items: the padding bits of the last byte set. */
function paddedBitset(count: number): Uint8Array {
  const bits = new Uint8Array((count + 7) >> 3);
  if ((count & 7) !== 0) bits[bits.length - 1] = 0xff << (count & 7);
  return bits;
}

/**
 * The swarm scheduler: see the policy in types.ts. Pure and synchronous — time
 * comes only from `components.clock`, randomness only from `components.random`.
 */
export class Scheduler implements SchedulerApi {
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly candidatesPerPiece: number;
  private readonly maxUploadsPerPeer: number;
  private readonly maxSeedUploads: number;
  private readonly maxSeedDownloadsPerChild: number;
  private readonly failurePenaltyMs: number;
  private readonly quarantineMs: number;
  private readonly assignmentTtlMs: number;
  private readonly maxBlobs: number;
  private readonly seedCopyPatienceMs: number;
  private readonly chainMembers: number;
  private readonly chainWindow: number;

  private readonly peers = new Map<string, PeerRec>();
  /** Least recently used first. */
  private readonly blobs = new Map<string, BlobState>();
  private mru: BlobState | undefined;
  /** peerId → quarantine end (ms); insertion order = oldest first. */
  private readonly quarantine = new Map<string, number>();

  /** Assignments in expiry order from `head`; dead ones are tombstones. */
  private queue: Assignment[] = [];
  private head = 0;
  private liveAssignments = 0;
  private seedUploads = 0;

  /** Scratch sort keys for one schedule call (grown to the largest pieceCount). */
  private keys = new Float64Array(1024);
  /** The ranked parents of the piece being assigned (see rankHolders). */
  private readonly rankedPeers: PeerRec[] = [];
  private readonly rankedRanks: number[] = [];
  private found = 0;
  private sawBusy = false;
  /** Upload caps in force for the assignment being made (lowered for a child's extra pieces). */
  private parentCap = 0;
  /** This schedule call's child is its blob's only member and already has pieces in flight there (see `assign`). */
  private aloneAsking = false;
  private seedCap = 0;

  constructor(components: SchedulerComponents, init: SchedulerInit = {}) {
    this.clock = components.clock;
    this.random = components.random ?? Math.random;
    this.candidatesPerPiece = positiveInt(init.candidatesPerPiece ?? DEFAULT_CANDIDATES_PER_PIECE, 'candidatesPerPiece');
    this.maxUploadsPerPeer = positiveInt(init.maxUploadsPerPeer ?? DEFAULT_MAX_UPLOADS_PER_PEER, 'maxUploadsPerPeer');
    this.maxSeedUploads = positiveInt(init.maxSeedUploads ?? DEFAULT_MAX_SEED_UPLOADS, 'maxSeedUploads');
    this.maxSeedDownloadsPerChild = positiveInt(init.maxSeedDownloadsPerChild ?? DEFAULT_MAX_SEED_DOWNLOADS_PER_CHILD, 'maxSeedDownloadsPerChild');
    this.failurePenaltyMs = nonNegative(init.failurePenaltyMs ?? DEFAULT_FAILURE_PENALTY_MS, 'failurePenaltyMs');
    this.quarantineMs = nonNegative(init.quarantineMs ?? DEFAULT_QUARANTINE_MS, 'quarantineMs');
    this.assignmentTtlMs = nonNegative(init.assignmentTtlMs ?? DEFAULT_ASSIGNMENT_TTL_MS, 'assignmentTtlMs');
    this.maxBlobs = positiveInt(init.maxBlobs ?? DEFAULT_MAX_BLOBS, 'maxBlobs');
    this.seedCopyPatienceMs = this.assignmentTtlMs / SEED_COPY_PATIENCE_DIVISOR;
    const chainMembers = init.chainMembers ?? DEFAULT_CHAIN_MEMBERS;
    this.chainMembers = chainMembers === 0 ? 0 : positiveInt(chainMembers, 'chainMembers');
    if (this.chainMembers > MAX_CHAIN_MEMBERS) throw new RangeError(`chainMembers must be at most ${MAX_CHAIN_MEMBERS}, got ${chainMembers}`);
    this.chainWindow = positiveInt(init.chainWindow ?? DEFAULT_CHAIN_WINDOW, 'chainWindow');
  }

  /** `serves: false`: the peer downloads but is never named as a parent (its address is not proven yet). */
  addPeer(peer: { peerId: string; url: string; zone?: string | undefined; serves?: boolean | undefined }): void {
    if (peer.peerId === SEED_ID) throw new RangeError(`peer id "${SEED_ID}" is reserved for the supernode`);
    const existing = this.peers.get(peer.peerId);
    if (existing !== undefined) {
      const same = existing.zone === peer.zone && existing.candidate.kind === 'peer' && existing.candidate.url === peer.url;
      // Re-adding refreshes the peer's age; a changed address or zone is a new incarnation.
      this.peers.delete(peer.peerId);
      if (same) {
        existing.serves = peer.serves ?? true;
        this.peers.set(peer.peerId, existing);
        return;
      }
      this.forget(existing);
    }
    const rec: PeerRec = {
      peerId: peer.peerId,
      candidate: Object.freeze({ kind: 'peer', peerId: peer.peerId, url: peer.url }),
      zone: peer.zone,
      serves: peer.serves ?? true,
      uploads: 0,
      seedDownloads: 0,
      downloads: 0,
      removed: false,
      blobs: new Set(),
      penalties: undefined,
    };
    this.peers.set(peer.peerId, rec);
    while (this.peers.size > MAX_PEERS) {
      const oldest = this.peers.values().next().value;
      if (oldest === undefined) break;
      this.peers.delete(oldest.peerId);
      this.forget(oldest);
    }
  }

  removePeer(peerId: string): void {
    this.expire(this.clock.now());
    const rec = this.peers.get(peerId);
    if (rec === undefined) return;
    this.peers.delete(peerId);
    this.forget(rec);
    this.compactQueue();
  }

  addBlob(digest: string, pieceCount: number): void {
    if (!Number.isSafeInteger(pieceCount) || pieceCount < 1 || pieceCount > MAX_PIECES_PER_BLOB) {
      throw new RangeError(`invalid piece count ${pieceCount} (1..${MAX_PIECES_PER_BLOB})`);
    }
    this.expire(this.clock.now());
    if (this.touch(digest) !== undefined) return;
    const blob = new BlobState(digest, pieceCount);
    this.blobs.set(digest, blob);
    this.mru = blob;
    while (this.blobs.size > this.maxBlobs) {
      const oldest = this.blobs.values().next().value;
      if (oldest === undefined) break;
      this.dropBlob(oldest);
    }
    if (this.keys.length < pieceCount) this.keys = new Float64Array(pieceCount);
  }

  seedHas(digest: string, pieces: readonly number[]): void {
    this.expire(this.clock.now());
    const blob = this.touch(digest);
    if (blob === undefined) return;
    for (const p of pieces) {
      if (!validPiece(blob, p)) continue;
      blob.seedHave[p >> 3] = (blob.seedHave[p >> 3] as number) | (1 << (p & 7));
    }
  }

  seedProgress(digest: string, piece: number): void {
    const blob = this.touch(digest);
    if (blob === undefined || !validPiece(blob, piece) || (blob.seedInflight[piece] as number) === 0) return;
    blob.seedCopySince[piece] = this.clock.now();
  }

  peerHas(peerId: string, digest: string, pieces: readonly number[]): number[] {
    return this.addHoldings(peerId, digest, pieces, false);
  }

  peerArriving(peerId: string, digest: string, pieces: readonly number[]): number[] {
    return this.addHoldings(peerId, digest, pieces, true);
  }

  /**
   * Pieces a peer holds, verified or (`arriving`) still arriving. A verified
   * piece ends the peer's own assignment for it; one that was arriving is
   * counted as newly held (its holder slot stays). Returns the pieces added.
   */
  private addHoldings(peerId: string, digest: string, pieces: readonly number[], arriving: boolean): number[] {
    this.expire(this.clock.now());
    const blob = this.touch(digest);
    const rec = this.peers.get(peerId);
    const added: number[] = [];
    if (blob === undefined || rec === undefined) return added;
    const m = this.member(blob, rec);
    for (const p of pieces) {
      if (!validPiece(blob, p)) continue;
      const byte = p >> 3;
      const bit = 1 << (p & 7);
      if (!arriving) {
        if (((m.pending[byte] as number) & bit) !== 0) {
          const a = m.assignments.find((x) => x.piece === p);
          if (a !== undefined) this.release(a);
        }
        if (((m.arriving[byte] as number) & bit) !== 0) {
          // It was a holder while it arrived; now it holds the piece verified.
          m.arriving[byte] = (m.arriving[byte] as number) & ~bit;
          added.push(p);
          continue;
        }
      }
      if (((m.have[byte] as number) & bit) !== 0) continue;
      m.have[byte] = (m.have[byte] as number) | bit;
      if (arriving) m.arriving[byte] = (m.arriving[byte] as number) | bit;
      blob.holderCount[p] = (blob.holderCount[p] as number) + 1;
      blob.pushHolder(p, m.slot);
      added.push(p);
    }
    if (!arriving) this.compactQueue();
    return added;
  }

  peerArrivalFailed(peerId: string, digest: string, pieces: readonly number[]): void {
    this.expire(this.clock.now());
    const blob = this.touch(digest);
    const rec = this.peers.get(peerId);
    if (blob === undefined || rec === undefined) return;
    const m = blob.byPeer.get(rec);
    if (m === undefined) return;
    for (const p of pieces) {
      if (!validPiece(blob, p)) continue;
      const byte = p >> 3;
      const bit = 1 << (p & 7);
      if (((m.arriving[byte] as number) & bit) === 0) continue;
      m.arriving[byte] = (m.arriving[byte] as number) & ~bit;
      m.have[byte] = (m.have[byte] as number) & ~bit;
      blob.holderCount[p] = (blob.holderCount[p] as number) - 1;
      const list = blob.holders[p];
      let len = blob.holderLen[p] as number;
      if (list === undefined) continue;
      for (let i = 0; i < len; i++) {
        if (list[i] !== m.slot) continue;
        list[i] = list[--len] as number;
        blob.holderLen[p] = len;
        break;
      }
    }
  }

  peerDropped(peerId: string, digest: string): void {
    this.expire(this.clock.now());
    const blob = this.touch(digest);
    const rec = this.peers.get(peerId);
    if (blob === undefined || rec === undefined) return;
    const m = blob.byPeer.get(rec);
    if (m === undefined) return;
    this.dropMember(blob, m);
    rec.blobs.delete(blob);
    this.compactQueue();
  }

  reportFailure(childId: string, parentId: string, digest: string, piece: number, kind: FailureKind): void {
    const now = this.clock.now();
    this.expire(now);
    const child = this.peers.get(childId);
    if (child === undefined) return;
    // The report ends the child's assignment for the piece whichever candidate
    // failed: the upload it counted is not happening (or not on that parent).
    const blob = this.touch(digest);
    if (blob !== undefined && validPiece(blob, piece)) {
      const m = blob.byPeer.get(child);
      if (m !== undefined && ((m.pending[piece >> 3] as number) & (1 << (piece & 7))) !== 0) {
        const a = m.assignments.find((x) => x.piece === piece);
        if (a !== undefined) this.release(a);
      }
    }
    if (parentId === childId) return;
    if (kind === 'bad-piece' && parentId !== SEED_ID) {
      // Anybody's report quarantines the parent for everybody. The seed is never
      // quarantined (it verifies every piece itself); the reporter avoids it below.
      this.quarantine.delete(parentId);
      this.quarantine.set(parentId, now + this.quarantineMs);
      while (this.quarantine.size > MAX_QUARANTINED) {
        const oldest = this.quarantine.keys().next().value;
        if (oldest === undefined) break;
        this.quarantine.delete(oldest);
      }
    } else {
      // The seed is everyone's last resort: avoiding it for long can only stall a
      // child (seen as 30 s idle bodies at 16 nodes on a starved host), so a
      // failure there is held against it as briefly as 'busy'. So is 'missing':
      // the parent is healthy, its copy was not there yet (a chain link's copy
      // still on its way), and a chain routes around a penalised link.
      const brief = kind === 'busy' || kind === 'missing' || parentId === SEED_ID;
      const penaltyMs = brief ? Math.min(BUSY_PENALTY_MS, this.failurePenaltyMs) : this.failurePenaltyMs;
      const penalties = (child.penalties ??= new Map());
      penalties.delete(parentId);
      penalties.set(parentId, now + penaltyMs);
      while (penalties.size > MAX_PENALTIES_PER_CHILD) {
        const oldest = penalties.keys().next().value;
        if (oldest === undefined) break;
        penalties.delete(oldest);
      }
    }
    this.compactQueue();
  }

  schedule(childId: string, digest: string, options: { limit: number; urgent?: readonly number[] }): PieceAssignment[] {
    const now = this.clock.now();
    this.expire(now);
    const blob = this.touch(digest);
    const child = this.peers.get(childId);
    if (blob === undefined || child === undefined) return [];
    const m = this.member(blob, child);
    const limit = Number.isFinite(options.limit) ? Math.floor(options.limit) : 0;
    const budget = Math.min(limit, MAX_INFLIGHT_PER_CHILD - m.assignments.length);
    this.aloneAsking = blob.liveMembers <= 1 && m.assignments.length > 0;
    const out: PieceAssignment[] = [];
    if (budget <= 0) return out;

    // 0. A chain member takes the next pieces from its link (see "Chain" in types.ts).
    const link = this.chainLink(blob, m, now);
    if (link !== undefined) {
      const room = Math.min(budget, this.chainWindow - m.assignments.length);
      if (room > 0) this.chainAssign(blob, m, link, room, now, out);
      this.compactQueue();
      return out;
    }

    const have = m.have;
    const pending = m.pending;
    const holderCount = blob.holderCount;
    const inflightCount = blob.inflightCount;
    const seedInflight = blob.seedInflight;
    const wanted = (p: number): boolean =>
      Number.isInteger(p) &&
      p >= 0 &&
      p < blob.pieceCount &&
      (((have[p >> 3] as number) | (pending[p >> 3] as number)) & (1 << (p & 7))) === 0 &&
      ((holderCount[p] as number) > 0 || blob.seedHas(p));
    // Super-seeding: only the seed has it and it is already on its way to someone.
    const postponed = (p: number): boolean => (holderCount[p] as number) === 0 && (seedInflight[p] as number) > 0;

    // 1. Urgent pieces, in the child's order (postponed ones wait for step 3).
    let urgentPostponed: number[] | undefined;
    const urgent = options.urgent ?? [];
    for (let i = 0; i < urgent.length && i < MAX_URGENT && out.length < budget; i++) {
      const p = urgent[i] as number;
      if (!wanted(p)) continue;
      if (postponed(p)) (urgentPostponed ??= []).push(p);
      // The first urgent piece of a child with nothing in flight for this blob: its reader is starving.
      else this.assign(blob, m, p, now, out, i === 0 && m.assignments.length === 0);
    }

    // 2. Rarest first among the rest: one pass over the child's bitsets builds
    //    sort keys (class, holders + in-flight copies, index) for every piece it
    //    could fetch; class 1 = postponed.
    if (out.length < budget) {
      const keys = this.keys;
      let n = 0;
      const bytes = have.length;
      for (let b = 0; b < bytes; b++) {
        const busy = (have[b] as number) | (pending[b] as number);
        if (busy === 0xff) continue;
        const base = b << 3;
        const seedByte = blob.seedHave[b] as number;
        for (let bit = 0; bit < 8; bit++) {
          if ((busy & (1 << bit)) !== 0) continue;
          const p = base + bit;
          const hc = holderCount[p] as number;
          if (hc === 0 && (seedByte & (1 << bit)) === 0) continue;
          const rarity = Math.min(hc + (inflightCount[p] as number), KEY_CLASS - 1);
          const cls = hc === 0 && (seedInflight[p] as number) > 0 ? KEY_CLASS : 0;
          keys[n++] = (cls + rarity) * PIECE_SPACE + p;
        }
      }
      const postponedFrom = KEY_CLASS * PIECE_SPACE;
      let i = 0;
      let sorted = false;
      let deferred = 0;
      let failed = 0;
      const share = this.childShare(blob);
      while (out.length < budget && i < n && failed < (m.assignments.length >= share ? MAX_FAILED_EXTRA_PICKS : MAX_FAILED_PICKS)) {
        if (!sorted && i >= LINEAR_PICKS) {
          keys.subarray(i, n).sort();
          sorted = true;
        }
        if (!sorted) {
          let best = i;
          for (let j = i + 1; j < n; j++) if ((keys[j] as number) < (keys[best] as number)) best = j;
          const tmp = keys[i] as number;
          keys[i] = keys[best] as number;
          keys[best] = tmp;
        }
        const key = keys[i++] as number;
        if (key >= postponedFrom) {
          deferred = n - i + 1;
          break;
        }
        if (!this.assign(blob, m, key % PIECE_SPACE, now, out)) failed++;
      }

      // 3. Postponed pieces (only the seed has them, already on their way to
      //    someone else): only when nothing else could be assigned, and only
      //    once every seed copy in flight has had its patience (see
      //    seedCopyPatienceMs) — a second copy of a piece nobody holds yet is
      //    otherwise pure waste of the seed's link, which at swarm start would
      //    fill all maxSeedUploads slots with copies of piece 0.
      if (out.length === 0) {
        const patient = (p: number): boolean =>
          now - (blob.seedCopySince[p] as number) >= this.seedCopyPatienceMs * (seedInflight[p] as number);
        for (const p of urgentPostponed ?? []) {
          if (out.length >= budget) break;
          if (((pending[p >> 3] as number) & (1 << (p & 7))) === 0 && patient(p)) this.assign(blob, m, p, now, out);
        }
        if (deferred > 0) {
          if (!sorted) keys.subarray(i - 1, n).sort();
          for (let j = i - 1; j < n && out.length < budget && this.seedUploads < this.maxSeedUploads; j++) {
            const p = (keys[j] as number) % PIECE_SPACE;
            if (((pending[p >> 3] as number) & (1 << (p & 7))) === 0 && patient(p)) this.assign(blob, m, p, now, out);
          }
        }
      }
    }
    this.compactQueue();
    return out;
  }

  chainSlot(peerId: string, digest: string): ChainSlot | undefined {
    const blob = this.blobs.get(digest);
    const rec = this.peers.get(peerId);
    const m = blob === undefined || rec === undefined ? undefined : blob.byPeer.get(rec);
    if (blob === undefined || m === undefined) return undefined;
    const link = this.chainLink(blob, m, this.clock.now());
    return link === undefined ? undefined : { head: link === null, room: Math.max(0, this.chainWindow - m.assignments.length) };
  }

  stats(): SchedulerStats {
    this.expire(this.clock.now());
    return { peers: this.peers.size, blobs: this.blobs.size, inflightAssignments: this.liveAssignments, seedInflight: this.seedUploads };
  }

  members(digest: string): number {
    return this.blobs.get(digest)?.liveMembers ?? 0;
  }

  isMember(peerId: string, digest: string): boolean {
    const blob = this.blobs.get(digest);
    const peer = this.peers.get(peerId);
    return blob !== undefined && peer !== undefined && blob.byPeer.has(peer);
  }

  /** O(members × pieces / 8): for the status API, which asks about a bounded number of blobs. */
  copies(digest: string): BlobCopies | undefined {
    const blob = this.blobs.get(digest);
    if (blob === undefined) return undefined;
    let complete = 0;
    let holders = 0;
    for (const m of blob.members) {
      if (m === undefined || m.peer.removed) continue;
      // Padding bits past pieceCount are set, so a full copy is all 0xff.
      let all = true;
      let any = false;
      for (let i = 0; i < m.have.length; i++) {
        const byte = m.have[i] as number;
        if (byte !== 0xff) all = false;
        const padding = i === m.have.length - 1 && (blob.pieceCount & 7) !== 0 ? 0xff & ~((1 << (blob.pieceCount & 7)) - 1) : 0;
        if ((byte & ~padding & 0xff) !== 0) any = true;
      }
      if (all) complete++;
      if (any) holders++;
    }
    return { complete, holders, pieceCount: blob.pieceCount };
  }

  // ---------------------------------------------------------------------------

  /**
   * Picks the candidates for one piece and, if there is any, records the
   * assignment against the first one. Returns false when no parent can take it.
   */
  private assign(blob: BlobState, m: Member, piece: number, now: number, out: PieceAssignment[], starving = false): boolean {
    const child = m.peer;
    // Fair shares: a child gets no more busy parents at once than a parent gets
    // children (maxUploadsPerPeer; one fewer in a large swarm, see
    // LARGE_SWARM_MEMBERS), so upload slots spread over all children
    // instead of piling onto the ones that ask most often; pieces beyond that
    // come only from idle parents (spare capacity nobody else is waiting for).
    // Counted over all blobs: an image's layers are fetched at once, and a
    // share per blob gave a child five times its share while others starved
    // (the simulator, N=16, 5 layers: p50 1.53 → 1.50 × S/B at 10 Mbit/s).
    const extra = child.downloads >= this.childShare(blob);
    // A starving child (its reader blocked, nothing in flight for the blob) may
    // take one upload slot past a parent's cap. At N=16, with every holder full
    // of bulk pieces that other children grab as soon as a slot frees, such a
    // child got nothing for 17 s and containerd gave up on the swarm.
    const rare = (blob.holderCount[piece] as number) <= RARE_PIECE_HOLDERS;
    this.parentCap = starving ? this.maxUploadsPerPeer + 1 : extra ? 1 : rare ? this.maxUploadsPerPeer : Math.max(1, this.maxUploadsPerPeer - 1);
    // The seed only if idle for a child past its share, unless it is starving
    // (one slot past the seed's cap, as for a peer) or alone in the blob: its
    // only member, asking again (a swarm's first caller is alone only for the
    // moment before the others ask).
    this.seedCap = starving ? this.maxSeedUploads + 1 : extra && !this.aloneAsking ? Math.min(1, this.maxSeedUploads) : this.maxSeedUploads;
    const seedOk = blob.seedHas(piece) && !this.penalized(child, SEED_ID, now);
    // The last slot is kept for the seed when it can serve the piece.
    const peerSlots = seedOk && this.candidatesPerPiece > 1 ? this.candidatesPerPiece - 1 : this.candidatesPerPiece;
    const found = this.rankHolders(blob, piece, child, now, peerSlots);
    const candidates: ParentCandidate[] = [];
    let parent: PeerRec | undefined;
    for (let i = 0; i < found; i++) candidates.push((this.rankedPeers[i] as PeerRec).candidate);
    if (found > 0) {
      parent = this.rankedPeers[0] as PeerRec;
      if (seedOk) candidates.push(SEED_CANDIDATE);
    } else {
      // No peer can serve it. The seed steps in when no peer holds the piece or
      // every holder seen is excluded for this child; when some are merely full
      // they will be free soon, and waiting for them keeps the seed's egress low.
      // A starving child may pass its own cap of seed copies: that cap keeps a
      // child from taking the seed's link for bulk pieces, and a small blob
      // (an image's config) waited behind it for 7 s while the child's copies
      // of the big layers kept it full (bench:swarm, N=1, 400 Mbit/s).
      //
      // A child that is the blob's only member has nobody to pass pieces on
      // to: its seed copies are capped by the seed's slots only, else a node
      // pulling alone had two pieces in flight and its layers already in
      // the cache came one after the other (bench:swarm, N=1, 400 Mbit/s).
      const perChild = this.aloneAsking ? Math.max(this.maxSeedDownloadsPerChild, LONE_CHILD_SEED_DOWNLOADS) : this.maxSeedDownloadsPerChild;
      if (!seedOk || this.sawBusy || this.seedUploads >= this.seedCap || (child.seedDownloads >= perChild && !starving)) return false;
      candidates.push(SEED_CANDIDATE);
    }
    this.record(blob, m, piece, parent, now);
    out.push({ piece, candidates });
    return true;
  }

  /** Counts an assignment of `piece` to child `m` from `parent` (undefined: the seed) until it completes, fails or expires. */
  private record(blob: BlobState, m: Member, piece: number, parent: PeerRec | undefined, now: number): void {
    const a: Assignment = { blob, child: m, piece, parent, expiresAtMs: now + this.assignmentTtlMs, live: true };
    if (parent === undefined) {
      this.seedUploads++;
      m.peer.seedDownloads++;
      if ((blob.seedInflight[piece] as number) === 0) blob.seedCopySince[piece] = now;
      blob.seedInflight[piece] = (blob.seedInflight[piece] as number) + 1;
    } else {
      parent.uploads++;
    }
    blob.inflightCount[piece] = (blob.inflightCount[piece] as number) + 1;
    m.peer.downloads++;
    m.pending[piece >> 3] = (m.pending[piece >> 3] as number) | (1 << (piece & 7));
    m.assignments.push(a);
    this.queue.push(a);
    this.liveAssignments++;
  }

  /**
   * Where `m` stands in the blob's chain: undefined when there is none (chains
   * off, or the blob has one member or more than chainMembers); null when `m`
   * is the head, fed by the seed; else its link, the nearest member before it
   * that can be its parent. O(chainMembers) plus the removed members' empty
   * slots among them.
   *
   * A swarm larger than a chain is scheduled rarest first as a whole: with the
   * first 16 of it in a chain and the rest rarest first, the others' frontier
   * claims took the pieces arriving at the seed from the chain's head, which
   * then waited for them to land whole, and the model put N = 16 with a chain
   * of 4, 8 or 12 at 1.68–2.08 × S/B, against 1.15–1.20 for a chain of all 16.
   */
  private chainLink(blob: BlobState, m: Member, now: number): Member | null | undefined {
    if (this.chainMembers === 0 || blob.liveMembers < 2 || blob.liveMembers > this.chainMembers) return undefined;
    let link: Member | null = null;
    for (const x of blob.members) {
      if (x === undefined) continue;
      if (x === m) return link;
      const peer = x.peer;
      if (!peer.serves || this.penalized(m.peer, peer.peerId, now) || (this.quarantine.size > 0 && this.quarantined(peer.peerId, now))) continue;
      link = x;
    }
    return undefined;
  }

  /**
   * A chain member's next pieces in index order, up to `budget`, each from its
   * link (null: the seed) where the link holds it or receives it, or has been
   * given it and its own link (the seed, for the head) holds or receives it;
   * stops at the first piece the link does not have coming. A request ahead thus
   * waits at the link for one hop at most: reaching further, the members at the
   * end of a chain of 16 waited for every hop before them, beyond a peer's
   * longest hold (RELAY_WAIT_MAX_MS), and 231 requests of one cold pull at
   * N = 16, 10 Mbit/s came back "not here". The link is the only candidate:
   * with the seed as a second one, every request ahead that ran out at a link
   * went to the seed, whose link then filled, its other sends slowed, more
   * requests ran out, and a pull at N = 16, 25 Mbit/s took 3.8 × S/B with
   * 3.3 × S from the supernode's host.
   */
  private chainAssign(blob: BlobState, m: Member, link: Member | null, budget: number, now: number, out: PieceAssignment[]): void {
    const have = m.have;
    const pending = m.pending;
    const seedOk = link === null && !this.penalized(m.peer, SEED_ID, now);
    const upstream = link === null ? undefined : this.chainLink(blob, link, now);
    for (let p = 0; p < blob.pieceCount && out.length < budget; p++) {
      const byte = p >> 3;
      const busy = (have[byte] as number) | (pending[byte] as number);
      if (busy === 0xff) {
        p |= 7; // the whole byte is held or in flight
        continue;
      }
      const bit = 1 << (p & 7);
      if ((busy & bit) !== 0) continue;
      if (link === null) {
        if (!seedOk || !blob.seedHas(p) || this.seedUploads >= this.maxSeedUploads) return;
        this.record(blob, m, p, undefined, now);
        out.push({ piece: p, candidates: [SEED_CANDIDATE] });
        continue;
      }
      if (((link.have[byte] as number) & bit) === 0) {
        if (((link.pending[byte] as number) & bit) === 0) return;
        const fed = upstream === null ? blob.seedHas(p) : upstream !== undefined && ((upstream.have[byte] as number) & bit) !== 0;
        if (!fed) return;
      }
      this.record(blob, m, p, link.peer, now);
      out.push({ piece: p, candidates: [link.peer.candidate] });
    }
  }

  /** Assignments a child may hold to busy parents at once, over all blobs (see LARGE_SWARM_MEMBERS). */
  private childShare(blob: BlobState): number {
    return blob.liveMembers >= LARGE_SWARM_MEMBERS ? Math.max(1, this.maxUploadsPerPeer - 1) : this.maxUploadsPerPeer;
  }

  /**
   * Fills `rankedPeers[0..found)` with the best eligible holders of `piece`:
   * same zone as the child first, then fewest uploads, ties in random order.
   * Looks at no more than HOLDER_PROBES holders (all of them when the list is
   * that short, otherwise random ones). Sets `sawBusy` when some holder seen
   * was skipped only for being full.
   */
  private rankHolders(blob: BlobState, piece: number, child: PeerRec, now: number, want: number): number {
    this.found = 0;
    this.sawBusy = false;
    const list = blob.holders[piece];
    if (want <= 0 || list === undefined || (blob.holderCount[piece] as number) === 0) return 0;
    const members = blob.members;
    let len = blob.holderLen[piece] as number;
    if (len <= HOLDER_PROBES) {
      // Short list: sweep tombstones, then look at all from a random start.
      if (blob.deadSlots > 0) {
        for (let i = 0; i < len; ) {
          if (members[list[i] as number] === undefined) list[i] = list[--len] as number;
          else i++;
        }
        blob.holderLen[piece] = len;
      }
      const start = Math.floor(this.random() * len);
      for (let k = 0; k < len; k++) {
        const j = start + k < len ? start + k : start + k - len;
        this.consider((members[list[j] as number] as Member).peer, child, now, want);
      }
    } else {
      // Enough once `want` parents are same-zone (or the child has no zone) and idle.
      const best = child.zone === undefined ? ZONE_OTHER : 0;
      for (let probe = 0; probe < HOLDER_PROBES && len > 0; probe++) {
        const i = Math.floor(this.random() * len);
        const member = members[list[i] as number];
        if (member === undefined) {
          list[i] = list[--len] as number; // tombstone of a removed peer
          blob.holderLen[piece] = len;
          continue;
        }
        this.consider(member.peer, child, now, want);
        if (this.found === want && (this.rankedRanks[want - 1] as number) === best) break;
      }
    }
    return this.found;
  }

  /** One holder: skipped, or inserted into the ranked list (stable: earlier probes win ties). */
  private consider(peer: PeerRec, child: PeerRec, now: number, want: number): void {
    if (peer === child || !peer.serves) return;
    if (peer.uploads >= this.parentCap) {
      this.sawBusy = true;
      return;
    }
    if ((this.quarantine.size > 0 && this.quarantined(peer.peerId, now)) || this.penalized(child, peer.peerId, now)) return;
    const peers = this.rankedPeers;
    const ranks = this.rankedRanks;
    const found = this.found;
    for (let k = 0; k < found; k++) if (peers[k] === peer) return;
    const rank = (child.zone !== undefined && peer.zone === child.zone ? 0 : ZONE_OTHER) + peer.uploads;
    let pos = found;
    while (pos > 0 && (ranks[pos - 1] as number) > rank) pos--;
    if (pos >= want) return;
    for (let k = Math.min(found, want - 1); k > pos; k--) {
      peers[k] = peers[k - 1] as PeerRec;
      ranks[k] = ranks[k - 1] as number;
    }
    peers[pos] = peer;
    ranks[pos] = rank;
    if (found < want) this.found = found + 1;
  }

  private penalized(child: PeerRec, parentId: string, now: number): boolean {
    const penalties = child.penalties;
    if (penalties === undefined || penalties.size === 0) return false;
    const until = penalties.get(parentId);
    if (until === undefined) return false;
    if (until > now) return true;
    penalties.delete(parentId);
    return false;
  }

  private quarantined(peerId: string, now: number): boolean {
    const until = this.quarantine.get(peerId);
    if (until === undefined) return false;
    if (until > now) return true;
    this.quarantine.delete(peerId);
    return false;
  }

  private member(blob: BlobState, peer: PeerRec): Member {
    let m = blob.byPeer.get(peer);
    if (m === undefined) {
      m = {
        peer,
        slot: blob.members.length,
        have: paddedBitset(blob.pieceCount),
        pending: new Uint8Array((blob.pieceCount + 7) >> 3),
        arriving: new Uint8Array((blob.pieceCount + 7) >> 3),
        assignments: [],
      };
      blob.members.push(m);
      blob.byPeer.set(peer, m);
      blob.liveMembers++;
      peer.blobs.add(blob);
    }
    return m;
  }

  /** Drops a member from a blob: its assignments end, its holdings leave the counts. */
  private dropMember(blob: BlobState, m: Member): void {
    while (m.assignments.length > 0) this.release(m.assignments[m.assignments.length - 1] as Assignment);
    const have = m.have;
    for (let p = 0; p < blob.pieceCount; p++) {
      if (((have[p >> 3] as number) & (1 << (p & 7))) !== 0) blob.holderCount[p] = (blob.holderCount[p] as number) - 1;
    }
    blob.members[m.slot] = undefined;
    blob.byPeer.delete(m.peer);
    blob.liveMembers--;
    blob.deadSlots++;
    if (blob.deadSlots > 64 && blob.deadSlots > blob.liveMembers) blob.compact();
  }

  private forget(rec: PeerRec): void {
    rec.removed = true;
    for (const blob of rec.blobs) {
      const m = blob.byPeer.get(rec);
      if (m !== undefined) this.dropMember(blob, m);
    }
    rec.blobs.clear();
  }

  private dropBlob(blob: BlobState): void {
    for (const m of blob.byPeer.values()) {
      while (m.assignments.length > 0) this.release(m.assignments[m.assignments.length - 1] as Assignment);
      m.peer.blobs.delete(blob);
    }
    this.blobs.delete(blob.digest);
    if (this.mru === blob) this.mru = undefined;
    this.compactQueue();
  }

  private touch(digest: string): BlobState | undefined {
    const mru = this.mru;
    if (mru !== undefined && mru.digest === digest) return mru;
    const blob = this.blobs.get(digest);
    if (blob === undefined) return undefined;
    this.blobs.delete(digest);
    this.blobs.set(digest, blob);
    this.mru = blob;
    return blob;
  }

  private release(a: Assignment): void {
    if (!a.live) return;
    a.live = false;
    this.liveAssignments--;
    const { blob, child, piece } = a;
    if (a.parent === undefined) {
      this.seedUploads--;
      child.peer.seedDownloads--;
      blob.seedInflight[piece] = (blob.seedInflight[piece] as number) - 1;
    } else {
      a.parent.uploads--;
    }
    blob.inflightCount[piece] = (blob.inflightCount[piece] as number) - 1;
    child.peer.downloads--;
    child.pending[piece >> 3] = (child.pending[piece >> 3] as number) & ~(1 << (piece & 7));
    const list = child.assignments;
    const i = list.indexOf(a);
    if (i >= 0) {
      list[i] = list[list.length - 1] as Assignment;
      list.pop();
    }
  }

  /** Ends assignments whose TTL has passed (the queue is in expiry order). */
  private expire(now: number): void {
    const queue = this.queue;
    let head = this.head;
    while (head < queue.length) {
      const a = queue[head] as Assignment;
      if (a.live) {
        if (a.expiresAtMs > now) break;
        if (a.parent === undefined && (a.blob.seedInflight[a.piece] as number) > 0 && now - (a.blob.seedCopySince[a.piece] as number) < this.seedCopyPatienceMs) {
          // A seed copy of this piece is still moving (seedProgress): a slow
          // link is not a dead child. Queued again with a fresh TTL; the queue
          // stays in expiry order since now + TTL is the latest expiry yet.
          a.expiresAtMs = now + this.assignmentTtlMs;
          queue.push(a);
        } else {
          this.release(a);
        }
      }
      head++;
    }
    this.head = head;
  }

  /** Keeps the queue within 2 × live assignments + a constant. */
  private compactQueue(): void {
    const pending = this.queue.length - this.head;
    if (pending > 2 * this.liveAssignments + 1024) {
      this.queue = this.queue.slice(this.head).filter((a) => a.live);
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}

function validPiece(blob: BlobState, p: number): boolean {
  return Number.isInteger(p) && p >= 0 && p < blob.pieceCount;
}

function positiveInt(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

function nonNegative(value: number, name: string): number {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be a non-negative number, got ${value}`);
  return value;
}
