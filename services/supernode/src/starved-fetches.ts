/**
 * The back-to-source fetches from one registry share its link, and TCP does not
 * share it evenly: with eight at once over 10 Mbit/s, three 3.2 MiB layers took
 * 58–61 s while the other seventeen took 10–22 s (bench:swarm, 20 layers). A
 * flow that lost packets again and again waits out ever longer retransmission
 * timers while the others fill the link. The swarm needs every layer's bytes:
 * the starved layers' pieces came last, all at once, and the supernode then
 * sent 1.2 × S. A fetch that brings less than a small share of what its
 * registry's fetches bring on average is moved to a new connection (a ranged
 * request from where it is: see ResumableBody), which starts afresh.
 */

/** The span a fetch's share is judged over; a new connection gets a whole one before it is judged. Milliseconds. */
export const STARVED_WINDOW_MS = 5_000;
/** A fetch that brought less than this share of its registry's mean over the window is starved. */
export const STARVED_SHARE = 1 / 8;
/** A registry whose fetches bring less than this on average over the window is slow as a whole, not unfair: the minimum rate rule (BlobTasks) deals with it. Bytes. */
export const STARVED_MIN_FAIR_BYTES = 64 * 1024;
/** How often the shares are looked at. Milliseconds. */
const CHECK_EVERY_MS = 1_000;

/** A fetch's body that can go on on a new connection (ResumableBody). */
export interface Restartable {
  restart(reason: string): boolean;
}

interface Watched {
  readonly registry: string;
  readonly body: Restartable;
  readonly onStarved: (reason: string) => void;
  bytes: number;
  /** `bytes` at each check of the current window, oldest first. */
  samples: number[];
}

export class StarvedFetches {
  private readonly fetches = new Set<Watched>();
  private timer: NodeJS.Timeout | undefined;
  private readonly windowChecks: number;

  constructor(
    private readonly options: { windowMs?: number; share?: number; minFairBytes?: number } = {},
  ) {
    this.windowChecks = Math.max(1, Math.round((options.windowMs ?? STARVED_WINDOW_MS) / CHECK_EVERY_MS));
  }

  /**
   * Watches one running fetch: `count` with each chunk's length, `stop` when it
   * ends. `onStarved` is told when it was moved to a new connection.
   */
  watch(registry: string, body: Restartable, onStarved: (reason: string) => void = () => undefined): { count: (bytes: number) => void; stop: () => void } {
    const watched: Watched = { registry, body, onStarved, bytes: 0, samples: [] };
    this.fetches.add(watched);
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.check(), CHECK_EVERY_MS);
      this.timer.unref();
    }
    return {
      count: (bytes) => {
        watched.bytes += bytes;
      },
      stop: () => {
        this.fetches.delete(watched);
        if (this.fetches.size === 0 && this.timer !== undefined) {
          clearInterval(this.timer);
          this.timer = undefined;
        }
      },
    };
  }

  /** One look at the shares (every second while fetches run; tests call it directly). */
  check(): void {
    const share = this.options.share ?? STARVED_SHARE;
    const minFair = this.options.minFairBytes ?? STARVED_MIN_FAIR_BYTES;
    const judged = new Map<string, Array<{ watched: Watched; windowBytes: number }>>();
    for (const watched of this.fetches) {
      watched.samples.push(watched.bytes);
      if (watched.samples.length > this.windowChecks + 1) watched.samples.shift();
      if (watched.samples.length <= this.windowChecks) continue;
      const windowBytes = watched.bytes - (watched.samples[0] as number);
      const group = judged.get(watched.registry) ?? [];
      group.push({ watched, windowBytes });
      judged.set(watched.registry, group);
    }
    for (const group of judged.values()) {
      // One fetch alone cannot be starved by its siblings.
      if (group.length < 2) continue;
      const fair = group.reduce((sum, g) => sum + g.windowBytes, 0) / group.length;
      if (fair < minFair) continue;
      for (const { watched, windowBytes } of group) {
        if (windowBytes >= fair * share) continue;
        const reason = `starved: ${windowBytes} bytes in ${this.windowChecks} s, against ${Math.round(fair)} for each of the registry's ${group.length} fetches`;
        if (!watched.body.restart(reason)) continue;
        watched.samples = [];
        watched.onStarved(reason);
      }
    }
  }
}
