import type { Readable } from 'node:stream';
import { ParentFailedError } from './piece-client.js';

/**
 * A piece body from a parent must bring at least this many bytes per second,
 * measured over SLOW_PARENT_WINDOW_MS. Far below any healthy share: a 10 Mbit/s
 * link split over 40 pieces in flight still gives each ~30 KiB/s. A parent that
 * trickles (1 byte/s resets every "no byte for N s" timer) loses its piece.
 */
export const MIN_PARENT_BYTES_PER_SEC = 4 * 1024;
/** How long a piece body is watched before its rate is judged, and the span each judgement covers. */
export const SLOW_PARENT_WINDOW_MS = 3_000;
/**
 * A piece body this many times slower than the median of the download's other
 * piece bodies (same child link, same moment) loses its piece: the parent is
 * the bottleneck, not the child's link.
 */
export const SLOW_PARENT_RATIO = 10;
/** Other bodies needed before the relative judgement applies. */
const MIN_PEERS_FOR_RATIO = 2;
/** How often the meters are looked at. */
const CHECK_INTERVAL_MS = 500;

/** One piece body being received: its byte count, and the window it is judged over. */
export interface Meter {
  bytes: number;
  /** Set when the body was cut for being too slow (the failure to report). */
  failure: ParentFailedError | undefined;
}

interface Watched extends Meter {
  readonly body: Readable;
  judged: boolean;
  readonly label: string;
  windowStartMs: number;
  windowStartBytes: number;
  /** Rate over the last full window (bytes/s); undefined until one passed. */
  rate: number | undefined;
}

/**
 * Watches the piece bodies of one download by progress, not by wall-clock
 * deadlines: every byte counts as progress (reported through `onBytes`), and a
 * body from a peer is cut only when its rate over a window falls below a floor
 * or far below the download's other bodies. Bodies from the seed are counted
 * but never judged: the seed is the last resort, and its pace is the registry's.
 * So is a peer's copy of a piece still arriving at the supernode (it passes the
 * bytes on as they come): it is judged only from `judge()` on, once the
 * supernode's copy is whole.
 * Holds one entry per body in flight (≤ the download's piece window).
 */
export class FetchMeters {
  private readonly watched = new Set<Watched>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly onBytes: (bytes: number) => void, private readonly now: () => number = () => performance.now()) {}

  /**
   * Counts `source`'s bytes as its reader takes them: a 'data' listener, which sees every
   * chunk the reader takes (by `read()` or flowing, as the store's `chunksOf` does), so no
   * stream stage sits between the parent and the store (a stage would
   * cost a Transform's work per chunk and a pipeline per piece). `judged`: a peer's body,
   * cut when too slow; `judge()` makes a body judged from now on (its first window
   * starts then). Call `stop` when done.
   */
  watch(source: Readable, options: { judged: boolean; label: string; onBytes?: () => void }): { meter: Meter; stop: () => void; judge: () => void } {
    const at = this.now();
    const all = this.onBytes;
    const own = options.onBytes;
    const w: Watched = { body: source, judged: options.judged, label: options.label, bytes: 0, failure: undefined, windowStartMs: at, windowStartBytes: 0, rate: undefined };
    const count = (chunk: Buffer): void => {
      w.bytes += chunk.length;
      all(chunk.length);
      own?.();
    };
    // Paused first: a 'data' listener on a stream not yet paused would start it flowing
    // before its reader is there. The reader starts it, and paces it.
    source.pause();
    source.on('data', count);
    this.watched.add(w);
    if (options.judged) this.startChecks();
    return {
      meter: w,
      stop: () => {
        source.off('data', count);
        this.watched.delete(w);
        if (this.watched.size === 0) this.close();
      },
      judge: () => {
        if (w.judged || !this.watched.has(w)) return;
        w.judged = true;
        w.windowStartMs = this.now();
        w.windowStartBytes = w.bytes;
        w.rate = undefined;
        this.startChecks();
      },
    };
  }

  private startChecks(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.check(), CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Judges every body whose window has passed. */
  check(): void {
    const now = this.now();
    for (const w of this.watched) {
      const elapsedMs = now - w.windowStartMs;
      if (elapsedMs < SLOW_PARENT_WINDOW_MS) continue;
      w.rate = ((w.bytes - w.windowStartBytes) * 1000) / elapsedMs;
      w.windowStartMs = now;
      w.windowStartBytes = w.bytes;
    }
    for (const w of this.watched) {
      if (!w.judged || w.rate === undefined || w.failure !== undefined) continue;
      let reason: string | undefined;
      if (w.rate < MIN_PARENT_BYTES_PER_SEC) reason = `${Math.round(w.rate)} B/s is under the floor of ${MIN_PARENT_BYTES_PER_SEC} B/s`;
      else {
        const others: number[] = [];
        for (const o of this.watched) if (o !== w && o.rate !== undefined) others.push(o.rate);
        if (others.length >= MIN_PEERS_FOR_RATIO) {
          others.sort((a, b) => a - b);
          const median = others[others.length >> 1] as number;
          if (w.rate * SLOW_PARENT_RATIO < median) reason = `${Math.round(w.rate)} B/s is under 1/${SLOW_PARENT_RATIO} of the other parents' ${Math.round(median)} B/s`;
        }
      }
      if (reason === undefined) continue;
      w.failure = new ParentFailedError('stalled', `parent ${w.label} too slow: ${reason}`);
      w.body.destroy(w.failure);
    }
  }
}
