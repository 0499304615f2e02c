import type { Clock } from '@shoal/core';

/** The window `recentBytesPerSec` averages over. Milliseconds: 1 min. */
export const THROUGHPUT_WINDOW_MS = 60_000;
/** Buckets in the window (10 s each). */
const BUCKETS = 6;
/** Peers tracked at most; the least recently active is forgotten first (the peer table holds at most as many). */
export const MAX_TRACKED_PEERS = 10_000;

interface Track {
  total: number;
  /** Bytes per bucket; `epochs` says which 10 s slot each bucket holds. */
  readonly bytes: Float64Array;
  readonly epochs: Float64Array;
}

/**
 * Piece bytes each peer reports verified (its schedule calls' `have`), as a
 * total and over the last minute. Memory: ~120 bytes per peer, at most
 * MAX_TRACKED_PEERS peers; a peer that leaves the table is forgotten.
 */
export class PeerThroughput {
  private readonly clock: Clock;
  /** Insertion-ordered by last activity: the oldest first. */
  private readonly peers = new Map<string, Track>();
  private totalBytes = 0;

  constructor(components: { clock: Clock }) {
    this.clock = components.clock;
  }

  add(peerId: string, bytes: number): void {
    if (bytes <= 0) return;
    this.totalBytes += bytes;
    let track = this.peers.get(peerId);
    if (track === undefined) {
      track = { total: 0, bytes: new Float64Array(BUCKETS), epochs: new Float64Array(BUCKETS).fill(-1) };
    } else {
      this.peers.delete(peerId);
    }
    this.peers.set(peerId, track);
    while (this.peers.size > MAX_TRACKED_PEERS) {
      const oldest = this.peers.keys().next().value;
      if (oldest === undefined) break;
      this.peers.delete(oldest);
    }
    track.total += bytes;
    const epoch = Math.floor(this.clock.now() / (THROUGHPUT_WINDOW_MS / BUCKETS));
    const slot = epoch % BUCKETS;
    if (track.epochs[slot] !== epoch) {
      track.epochs[slot] = epoch;
      track.bytes[slot] = 0;
    }
    track.bytes[slot] = (track.bytes[slot] as number) + bytes;
  }

  forget(peerId: string): void {
    this.peers.delete(peerId);
  }

  /** Bytes per second over the last THROUGHPUT_WINDOW_MS. */
  recentBytesPerSec(peerId: string): number {
    const track = this.peers.get(peerId);
    if (track === undefined) return 0;
    const epoch = Math.floor(this.clock.now() / (THROUGHPUT_WINDOW_MS / BUCKETS));
    let sum = 0;
    for (let i = 0; i < BUCKETS; i++) if ((track.epochs[i] as number) > epoch - BUCKETS) sum += track.bytes[i] as number;
    return sum / (THROUGHPUT_WINDOW_MS / 1000);
  }

  totalOf(peerId: string): number {
    return this.peers.get(peerId)?.total ?? 0;
  }

  /** Every peer's reported bytes since start, forgotten peers included. */
  get total(): number {
    return this.totalBytes;
  }
}
