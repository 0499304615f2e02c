import type { Digest, PeerMessage } from '@shoal/core';

/**
 * A piece's arrival is announced this long after its first bytes, unless it was
 * verified (or failed) by then. Milliseconds. A piece that crosses a fast link
 * whole in less time is announced once, as held, instead of twice (each
 * announcement is a WebSocket write: 9 % of a node agent's main thread, with
 * `have`, on a loopback pull); on a slow link, where passing a piece on while it arrives
 * pays, a piece takes a second or more and this is a few per cent of it.
 */
export const ARRIVING_ANNOUNCE_DELAY_MS = 25;
/** Arrivals waiting to be announced at most (pieces in flight are far fewer); past it, announced at once. */
const MAX_PENDING_ARRIVALS = 4_096;

/**
 * Tells the supernode, over the peer's WebSocket, which pieces this node can
 * serve: `have` once verified, `arriving` while they still arrive (see
 * ARRIVING_ANNOUNCE_DELAY_MS), `arrivalFailed` for an announced arrival that
 * did not match. Fed by the store's events.
 */
export class PieceAnnouncer {
  private readonly pending = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly send: (message: PeerMessage) => void,
    private readonly delayMs = ARRIVING_ANNOUNCE_DELAY_MS,
  ) {}

  arriving(digest: Digest, index: number): void {
    const key = `${digest}/${index}`;
    if (this.pending.has(key)) return;
    if (this.pending.size >= MAX_PENDING_ARRIVALS) {
      this.send({ type: 'arriving', digest, pieces: [index] });
      return;
    }
    const timer = setTimeout(() => {
      this.pending.delete(key);
      this.send({ type: 'arriving', digest, pieces: [index] });
    }, this.delayMs);
    timer.unref();
    this.pending.set(key, timer);
  }

  verified(digest: Digest, index: number): void {
    this.cancel(digest, index);
    this.send({ type: 'have', digest, pieces: [index] });
  }

  failed(digest: Digest, index: number): void {
    // Never announced: nothing to take back.
    if (this.cancel(digest, index)) return;
    this.send({ type: 'arrivalFailed', digest, pieces: [index] });
  }

  close(): void {
    for (const timer of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
  }

  /** Whether an announcement was still waiting (and is now dropped). */
  private cancel(digest: Digest, index: number): boolean {
    const key = `${digest}/${index}`;
    const timer = this.pending.get(key);
    if (timer === undefined) return false;
    clearTimeout(timer);
    this.pending.delete(key);
    return true;
  }
}
