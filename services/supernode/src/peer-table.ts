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

  register(peerId: string, advertiseUrl: string, zone: string | undefined, nodeName?: string): PeerEntry {
    const now = this.clock.now();
    const previous = this.peers.get(peerId);
    this.peers.delete(peerId);
    // A registration from a schedule call carries no node name: keep the one the WebSocket gave.
    const entry: PeerEntry = { peerId, advertiseUrl, zone, nodeName: nodeName ?? previous?.nodeName, registeredAtMs: previous?.registeredAtMs ?? now, lastSeenMs: now };
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

  remove(peerId: string): void {
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
