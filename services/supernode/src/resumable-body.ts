import { finished, Readable } from 'node:stream';
import { destroyQuietly } from '@shoal/core';

/**
 * A registry body that goes on from where it is on a new connection when the one it
 * came on breaks (reset, premature end, body timeout), or when the caller gives up on
 * it (`restart`: a connection that brings almost nothing may be dead). Whatever went
 * before stays: the bytes already ingested, verified and passed on to peers are not
 * fetched again.
 *
 * `reopen(offset, signal)` asks the registry for the blob from byte `offset` on and
 * answers the body and how many bytes at its start to drop (0 for a ranged answer;
 * `offset` when the registry ignored Range and sends the whole blob again).
 *
 * At most `maxResumesWithoutProgress` new connections in a row that each brought less
 * than `progressBytes`: a registry that keeps failing fails the fetch, as before.
 */
export class ResumableBody extends Readable {
  private current: Readable | undefined;
  /** Bytes of the current body still to drop (a registry that ignored Range). */
  private skip = 0;
  private delivered = 0;
  private resumesWithoutProgress = 0;
  private deliveredAtResume = 0;
  private reopening: AbortController | undefined;

  constructor(
    first: Readable,
    private readonly sizeBytes: number,
    private readonly reopen: (offset: number, signal: AbortSignal) => Promise<{ body: Readable; skipBytes: number }>,
    private readonly options: {
      maxResumesWithoutProgress: number;
      progressBytes: number;
      /** Told each time a new connection is asked for, with why. */
      onResume?: (info: { offset: number; reason: string }) => void;
    },
  ) {
    super();
    this.attach(first, 0);
  }

  /** Bytes passed on so far (the offset a new connection starts from). */
  get bytesDelivered(): number {
    return this.delivered;
  }

  /**
   * Cuts the current connection and goes on on a new one. False (nothing done) when
   * no connection is open (one is being opened, or the body ended) or the resumes
   * without progress are used up.
   */
  restart(reason: string): boolean {
    const old = this.current;
    if (old === undefined || this.destroyed || !this.mayResume()) return false;
    this.current = undefined;
    destroyQuietly(old);
    this.continueFrom(reason);
    return true;
  }

  override _read(): void {
    this.current?.resume();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.reopening?.abort(err ?? new Error('body destroyed'));
    const body = this.current;
    this.current = undefined;
    if (body !== undefined) destroyQuietly(body);
    callback(err);
  }

  private attach(body: Readable, skipBytes: number): void {
    this.current = body;
    this.skip = skipBytes;
    body.on('data', (chunk: Buffer) => {
      if (body !== this.current) return;
      let data = chunk;
      if (this.skip > 0) {
        const dropped = Math.min(this.skip, data.length);
        this.skip -= dropped;
        data = data.subarray(dropped);
        if (data.length === 0) return;
      }
      this.delivered += data.length;
      if (!this.push(data)) body.pause();
    });
    finished(body, (err) => {
      // Replaced (a restart) or torn down with us: not this body's news any more.
      if (body !== this.current || this.destroyed) return;
      this.current = undefined;
      if ((err === undefined || err === null) && this.delivered >= this.sizeBytes) {
        this.push(null);
        return;
      }
      const why = err ?? new Error(`registry body ended after ${this.delivered} of ${this.sizeBytes} bytes`);
      if (!this.mayResume()) {
        this.destroy(why);
        return;
      }
      this.continueFrom(why.message);
    });
  }

  private mayResume(): boolean {
    if (this.delivered - this.deliveredAtResume >= this.options.progressBytes) this.resumesWithoutProgress = 0;
    return this.resumesWithoutProgress < this.options.maxResumesWithoutProgress;
  }

  private continueFrom(reason: string): void {
    this.resumesWithoutProgress++;
    this.deliveredAtResume = this.delivered;
    const offset = this.delivered;
    this.options.onResume?.({ offset, reason });
    const reopening = new AbortController();
    this.reopening = reopening;
    this.reopen(offset, reopening.signal).then(
      ({ body, skipBytes }) => {
        this.reopening = undefined;
        if (this.destroyed) {
          destroyQuietly(body);
          return;
        }
        this.attach(body, skipBytes);
      },
      (err: unknown) => {
        this.reopening = undefined;
        this.destroy(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }
}
