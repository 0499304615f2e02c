import type { EventEmitter } from 'node:events';

/**
 * Runs `task` with a signal that aborts when `connection` (a request or a
 * response of the peer's HTTP exchange) emits 'close': a piece or an answer
 * the peer holds open for is no longer waited for once it went away.
 */
export async function whileConnected<T>(connection: Pick<EventEmitter, 'once' | 'off'>, task: (gone: AbortSignal) => Promise<T>): Promise<T> {
  const gone = new AbortController();
  const onClose = (): void => gone.abort(new Error('peer went away'));
  connection.once('close', onClose);
  try {
    return await task(gone.signal);
  } finally {
    connection.off('close', onClose);
  }
}

/**
 * First come, first served slots for piece sends: `size` run at once, the rest
 * wait in arrival order (at most `maxWaiting`). One after another, each piece
 * crosses the sender's link at full speed and its child can pass it on at once;
 * side by side, every piece arrives late and at the same moment, and a swarm
 * spreads a new piece only as fast as its first copies complete.
 */
export class SendSlots {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly size: number,
    private readonly maxWaiting: number,
  ) {
    if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`send slots must be a positive integer, got ${size}`);
  }

  /** Sends running and waiting. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  /**
   * Resolves with the function that frees the slot once one is free, or
   * undefined at once when `maxWaiting` are waiting already (the caller
   * refuses: busy). Rejects with the signal's reason if it aborts first.
   */
  async acquire(signal: AbortSignal): Promise<(() => void) | undefined> {
    signal.throwIfAborted();
    if (this.running < this.size) {
      this.running++;
      return this.releaser();
    }
    if (this.waiting.length >= this.maxWaiting) return undefined;
    await new Promise<void>((resolve, reject) => {
      const grant = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const i = this.waiting.indexOf(grant);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal.reason as Error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(grant);
    });
    return this.releaser();
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next === undefined) this.running--;
      else next(); // the slot passes straight to the next in line
    };
  }
}
