import { systemClock, type Clock } from '@shoal/core';

/** Peers remembered at most; a registration beyond it evicts the stalest. */
export const DEFAULT_MAX_PEERS = 20_000;
/** A peer that has not sent a heartbeat for this long is forgotten (3 missed beats). */
export const DEFAULT_PEER_TTL_MS = 45_000;

export interface PeerEntry {
  peerId: string;
  advertiseUrl: string;
  zone: string | undefined;
  /** The Kubernetes node the peer runs on, when it said (peers before `--node-name` do not). */
  nodeName: string | undefined;
  registeredAtMs: number;
  lastSeenMs: number;
  /** The WebSocket that registered it (undefined: a schedule call did): only that socket's close removes it. */
  owner: object | undefined;
  /** SHA-256 (hex) of the peer's own secret, when it sent one: a re-registration while live must match it. */
  secretHash: string | undefined;
  /**
   * Whether its advertised URL is bound to it: `bound` (the URL's host is the address its
   * connection came from), `verified` (the peer answering there is this one), `checking`,
   * or `failed`. Only bound and verified peers are named as parents.
   */
  advertiseCheck: AdvertiseCheck;
}

export type AdvertiseCheck = 'bound' | 'verified' | 'checking' | 'failed';

/** Who is registering a peer id: its socket, and the hash of the secret it presented. */
export interface PeerSession {
  owner?: object | undefined;
  secretHash?: string | undefined;
}

/** Cluster membership as the supernode knows it: bounded in size and in age. */
export class PeerTable {
  private readonly clock: Clock;
  private readonly maxPeers: number;
  private readonly ttlMs: number;
  // Map keeps insertion order; re-inserting on every heartbeat keeps the stalest first.
  private readonly peers = new Map<string, PeerEntry>();
  private readonly onRemove: (peerId: string) => void;

  constructor(components: { clock?: Clock } = {}, init: { maxPeers?: number; ttlMs?: number; onRemove?: (peerId: string) => void } = {}) {
    this.clock = components.clock ?? systemClock;
    this.maxPeers = init.maxPeers ?? DEFAULT_MAX_PEERS;
    this.ttlMs = init.ttlMs ?? DEFAULT_PEER_TTL_MS;
    this.onRemove = init.onRemove ?? (() => undefined);
  }

  /**
   * Whether `session` may register `peerId` now: the id is free (unknown or
   * expired), or held by the same socket, or held without a secret (a schedule
   * call, or a peer that sends none), or held with the secret presented.
   */
  mayClaim(peerId: string, session: PeerSession): boolean {
    const live = this.get(peerId);
    if (live === undefined || live.secretHash === undefined) return true;
    if (session.owner !== undefined && live.owner === session.owner) return true;
    return session.secretHash !== undefined && session.secretHash === live.secretHash;
  }

  register(peerId: string, advertiseUrl: string, zone: string | undefined, nodeName?: string, session: PeerSession = {}): PeerEntry {
    const now = this.clock.now();
    const previous = this.peers.get(peerId);
    this.peers.delete(peerId);
    // A registration from a schedule call carries no node name nor session: keep those the WebSocket gave.
    const entry: PeerEntry = {
      peerId,
      advertiseUrl,
      zone,
      nodeName: nodeName ?? previous?.nodeName,
      registeredAtMs: previous?.registeredAtMs ?? now,
      lastSeenMs: now,
      owner: session.owner ?? previous?.owner,
      secretHash: session.secretHash ?? previous?.secretHash,
      advertiseCheck: previous !== undefined && previous.advertiseUrl === advertiseUrl ? previous.advertiseCheck : 'checking',
    };
    this.peers.set(peerId, entry);
    while (this.peers.size > this.maxPeers) {
      const oldest = this.peers.keys().next().value;
      if (oldest === undefined) break;
      this.peers.delete(oldest);
      this.onRemove(oldest);
    }
    return entry;
  }

  heartbeat(peerId: string): boolean {
    const entry = this.peers.get(peerId);
    if (entry === undefined) return false;
    this.peers.delete(peerId);
    entry.lastSeenMs = this.clock.now();
    this.peers.set(peerId, entry);
    return true;
  }

  /** Forgets a peer; with `owner`, only if that socket still holds the id (a newer socket of the same peer stays). */
  remove(peerId: string, owner?: object): void {
    if (owner !== undefined && this.peers.get(peerId)?.owner !== owner) return;
    if (this.peers.delete(peerId)) this.onRemove(peerId);
  }

  get(peerId: string): PeerEntry | undefined {
    const entry = this.peers.get(peerId);
    if (entry === undefined || this.clock.now() - entry.lastSeenMs > this.ttlMs) return undefined;
    return entry;
  }

  /** Live peers; drops expired ones as a side effect. */
  list(): PeerEntry[] {
    this.prune();
    return [...this.peers.values()];
  }

  get size(): number {
    return this.peers.size;
  }

  prune(): void {
    const cutoff = this.clock.now() - this.ttlMs;
    for (const [id, entry] of this.peers) {
      if (entry.lastSeenMs >= cutoff) break; // ordered stalest first
      this.peers.delete(id);
      this.onRemove(id);
    }
  }
}
