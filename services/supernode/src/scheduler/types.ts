import type { Clock } from '@shoal/core';

/**
 * Contract of the swarm scheduler (implemented in scheduler.ts): a pure module
 * — no sockets, no timers, time only from the injected clock — so it can be
 * unit-tested and driven by the simulator (load-tests) with 10,000 simulated peers.
 *
 * The supernode feeds it membership (WebSocket), what its own cache holds
 * (seedHas, as pieces arrive from the registry), what each peer holds
 * (peerHas), and failures that children report; peers ask it which pieces to
 * fetch next and from whom (schedule).
 *
 * Policy (what `schedule` must do):
 * - Only pieces the child lacks, that the seed (supernode cache) or some peer
 *   already holds, and that are not already assigned to this child in flight.
 * - Order: the child's `urgent` pieces first (the ones a reader waits for, in the
 *   given order), then rarest first (fewest holders + in-flight copies), ties by
 *   lowest index.
 * - Candidates per piece (at most `candidatesPerPiece`): peers that hold it,
 *   same zone as the child first, then least loaded (in-flight uploads assigned
 *   to them), never the child itself, never a parent the child reported failing
 *   in the last `failurePenaltyMs`, never a parent anybody reported for bad bytes
 *   in the last `quarantineMs`; parents at `maxUploadsPerPeer` are skipped.
 * - The seed is the last resort: listed after the peers, and when no peer holds
 *   the piece it is the only candidate. To make every byte leave the supernode
 *   about once, a piece that is already in flight from the seed to another child
 *   and has no peer holder yet is postponed for this child when other pieces are
 *   available (super-seeding); the seed has its own cap `maxSeedUploads`.
 * - Every returned (child, piece, first candidate) counts as an in-flight upload
 *   of that candidate until the child announces the piece (peerHas), reports a
 *   failure for it, or `assignmentTtlMs` passes.
 * - All state is bounded: at most `maxBlobs` blobs (least recently used forgotten),
 *   peers removed with removePeer drop out of every blob.
 *
 * Chain (with `chainMembers` > 0, while a blob has from two members to
 * `chainMembers`): the members, in the order they joined, form a chain. Each
 * takes the pieces in index order, `chainWindow` at a time, from the
 * member before it (its link): pieces the link holds or is receiving, or has
 * been assigned while its own link (the seed, for the first) holds or receives
 * them ("requests ahead", one hop: the link's copy is about to begin, and it
 * passes the bytes on as they come). The first member takes them from the
 * seed. Every link thus sends each piece once, to one child, on one flow, at
 * the rate the pieces arrive. The link is the only candidate. A member that
 * cannot be a parent for this child (not serving, quarantined, penalised by
 * it) is passed over: the child's link is then the member before it, or the
 * seed.
 */
export interface SchedulerInit {
  /** @default 3 */
  candidatesPerPiece?: number;
  /** Concurrent uploads a peer is given at most. @default 4 */
  maxUploadsPerPeer?: number;
  /** Concurrent uploads the seed (supernode) is given at most. @default 8 */
  maxSeedUploads?: number;
  /**
   * Seed copies one child is given in flight at once, over all blobs. A child
   * holds few connections to the supernode: a copy queued behind others there
   * moves no bytes, looks dead to the seed's patience, and is sent again to
   * somebody else. @default 2
   */
  maxSeedDownloadsPerChild?: number;
  /** @default 30_000 */
  failurePenaltyMs?: number;
  /** @default 300_000 */
  quarantineMs?: number;
  /** @default 20_000 */
  assignmentTtlMs?: number;
  /** @default 10_000 */
  maxBlobs?: number;
  /**
   * The most members a blob's swarm may have to be scheduled as a chain (see
   * "Chain" in the policy above); 0 for none. A larger swarm, and a blob with
   * one member, are scheduled rarest first. @default 0
   */
  chainMembers?: number;
  /** Pieces a chain member is given in flight at once in one blob. @default 2 */
  chainWindow?: number;
}

/** A peer's place in a blob's chain (SchedulerApi.chainSlot). */
export interface ChainSlot {
  /** The chain's first member: it takes its pieces from the seed, the others from the member before them. */
  head: boolean;
  /** Pieces it may be given now in this blob beyond its live assignments (≥ 0). */
  room: number;
}

export interface SchedulerComponents {
  clock: Clock;
  /** For tie-breaking; injectable so tests and simulations are reproducible. @default Math.random */
  random?: () => number;
}

export type ParentCandidate = { kind: 'peer'; peerId: string; url: string } | { kind: 'seed' };

export interface PieceAssignment {
  piece: number;
  /** In preference order; the child tries them in turn. */
  candidates: ParentCandidate[];
}

export type FailureKind = 'bad-piece' | 'stalled' | 'unreachable' | 'missing' | 'busy';

export interface SchedulerStats {
  peers: number;
  blobs: number;
  inflightAssignments: number;
  seedInflight: number;
}

export interface SchedulerApi {
  addPeer(peer: { peerId: string; url: string; zone?: string | undefined; serves?: boolean | undefined }): void;
  removePeer(peerId: string): void;
  /** A blob's layout became known (its download started). Idempotent. */
  addBlob(digest: string, pieceCount: number): void;
  /** The supernode's cache verified these pieces: the seed can serve them. */
  seedHas(digest: string, pieces: readonly number[]): void;
  /**
   * The seed is sending `piece` and bytes are moving: its copies in flight are
   * healthy, so no further copy is handed out for want of patience (see
   * SEED_COPY_PATIENCE_DIVISOR). Patience is measured from the last progress,
   * not from when the copy began: on a slow link a healthy copy takes long.
   */
  seedProgress(digest: string, piece: number): void;
  /** A peer verified and holds these pieces (also completes its in-flight assignments for them). Returns the ones it was not yet known to hold verified (pieces it was receiving included). */
  peerHas(peerId: string, digest: string, pieces: readonly number[]): number[];
  /**
   * A peer is receiving these pieces and passes them on as they arrive
   * (cut-through): it is a holder from now on, but its own assignments for them
   * stay in flight until peerHas (or a failure report). Returns the ones added.
   */
  peerArriving(peerId: string, digest: string, pieces: readonly number[]): number[];
  /** Pieces a peer announced as arriving did not match: it stops being a holder of them (a verified piece is kept). */
  peerArrivalFailed(peerId: string, digest: string, pieces: readonly number[]): void;
  /** A peer no longer holds any piece of the blob (evicted it): it stops being a parent for it, and its own assignments for it end. */
  peerDropped(peerId: string, digest: string): void;
  /** A child reports that a parent failed it for a piece. `parentId` is 'seed' for the supernode. */
  reportFailure(childId: string, parentId: string, digest: string, piece: number, kind: FailureKind): void;
  /** The peer's place in the blob's chain, or undefined when it is not in one (it is scheduled rarest first). */
  chainSlot(peerId: string, digest: string): ChainSlot | undefined;
  /** Up to `limit` pieces for the child to fetch next. */
  schedule(childId: string, digest: string, options: { limit: number; urgent?: readonly number[] }): PieceAssignment[];
  /** Peers holding a complete copy or most pieces (diagnostics). */
  stats(): SchedulerStats;
  /** Live peers that asked to schedule pieces of a blob or announced some (0 for an unknown blob). O(1). */
  members(digest: string): number;
  /** Whether a live peer is a member of a blob's swarm (asked to schedule its pieces or announced some). O(1). */
  isMember(peerId: string, digest: string): boolean;
  /** How many live peers hold a blob: every piece (`complete`) or at least one (`holders`); undefined for a blob the scheduler does not know. */
  copies(digest: string): BlobCopies | undefined;
}

export interface BlobCopies {
  /** Live peers holding every piece. */
  complete: number;
  /** Live peers holding at least one piece. */
  holders: number;
  pieceCount: number;
}

export type { Clock };
