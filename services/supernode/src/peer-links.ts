import type { PeerMessage, SupernodeMessage } from '@shoal/core';

/** A `prefetched` answer as it came from a peer's WebSocket. */
export type PrefetchedMessage = Extract<PeerMessage, { type: 'prefetched' }>;
export type PrefetchProgressMessage = Extract<PeerMessage, { type: 'prefetchProgress' }>;
export type RuntimePulledMessage = Extract<PeerMessage, { type: 'runtimePulled' }>;

/** Who hears about peers' prefetch answers and lost sockets (the preheat jobs). */
export interface PeerLinkListener {
  prefetched(peerId: string, message: PrefetchedMessage): void;
  progress?(peerId: string, message: PrefetchProgressMessage): void;
  runtimePulled?(peerId: string, message: RuntimePulledMessage): void;
  disconnected(peerId: string): void;
}

/**
 * The open WebSocket of each registered peer, so the supernode can send it a
 * message (preheat's `prefetch`). One entry per open, registered socket: bounded
 * by the connections the server holds (and the peer table's maximum).
 */
export class PeerLinks {
  private readonly links = new Map<string, (message: SupernodeMessage) => boolean>();
  private listener: PeerLinkListener | undefined;

  /** One listener: the supernode has one set of preheat jobs. */
  listen(listener: PeerLinkListener): void {
    this.listener = listener;
  }

  /** A socket registered as `peerId`; a later socket of the same peer replaces it. */
  attach(peerId: string, send: (message: SupernodeMessage) => boolean): void {
    this.links.set(peerId, send);
  }

  /** The socket closed; a newer socket of the same peer stays. */
  detach(peerId: string, send: (message: SupernodeMessage) => boolean): void {
    if (this.links.get(peerId) !== send) return;
    this.links.delete(peerId);
    this.listener?.disconnected(peerId);
  }

  prefetched(peerId: string, message: PrefetchedMessage): void {
    this.listener?.prefetched(peerId, message);
  }

  progress(peerId: string, message: PrefetchProgressMessage): void {
    this.listener?.progress?.(peerId, message);
  }

  runtimePulled(peerId: string, message: RuntimePulledMessage): void {
    this.listener?.runtimePulled?.(peerId, message);
  }

  has(peerId: string): boolean {
    return this.links.has(peerId);
  }

  /** Peers with an open socket here. */
  get size(): number {
    return this.links.size;
  }

  /** False when the peer has no open socket here. */
  send(peerId: string, message: SupernodeMessage): boolean {
    return this.links.get(peerId)?.(message) ?? false;
  }
}
