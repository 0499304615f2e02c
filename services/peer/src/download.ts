import type { PeerMetrics } from './metrics.js';
import { setMaxListeners } from 'node:events';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import {
  destroyQuietly,
  backoffMs,
  delay,
  MAX_REPORTED_FAILURES,
  MAX_SCHEDULE_PIECES,
  parseDigest,
  pieceSpan,
  SwarmUnavailableError,
  type Digest,
  type FailureKindWire,
  type Logger,
  type PieceLayout,
  type ScheduleRequest,
  type TaskInfo,
} from '@shoal/core';
import type { ExpectedSha256, PieceStoreApi } from '@shoal/store';
import { FetchMeters, type Meter } from './fetch-meter.js';
import { failureKindOf, type PieceClient } from './piece-client.js';
import type { RateLimiter } from './rate-limit.js';
import type { SupernodeClient } from './supernode-client.js';

/** Pieces fetched at once for one blob: enough to keep a link busy while hashes are checked. */
export const DEFAULT_PIECE_WINDOW = 8;
/**
 * With no reader left, a download keeps going this long before it is cancelled
 * (containerd reconnects with Range within a second or two; a cut body is
 * resumed at once). Bytes landing meanwhile are not wasted: the store keeps
 * them for the reader that comes back, so this only bounds work nobody wants.
 */
export const ORPHAN_GRACE_MS = 30_000;
/** Pieces ahead of the slowest reader asked for as urgent. */
const URGENT_AHEAD = 8;
/**
 * How long the supernode may hold a schedule call that has nothing to assign
 * yet (ScheduleRequest.waitMs): it answers as soon as something can be, so the
 * download neither spins nor waits longer than needed. Below the supernode
 * client's liveness grace, so a held call needs no probe. A call that comes back
 * empty is made again at once, with the download's free slots as they are then,
 * and gets a fresh scheduler pass: a change in the swarm wakes only the calls
 * that waited longest (swarm.ts), so this also bounds how long a call may miss
 * one. Held up to 3 s, a pull made a third fewer calls but took about 0.01 × S/B
 * longer (bench:swarm, N=16, 25 Mbit/s, 8 pairs). A parent's failure is reported
 * at once all the same (see reportFailures).
 */
export const SCHEDULE_WAIT_MS = 800;
/** How long to wait before asking again when an answer with nothing came back at once (a supernode that does not hold answers). */
const IDLE_POLL_MIN_MS = 20;
const IDLE_POLL_MAX_MS = 100;
/**
 * A download with pieces missing and none landing for this long says so in the log,
 * with its state (at most this often). It is *stalled* only if no byte of it arrived
 * for as long: a warning and shoal_peer_download_stalls_total. One whose bytes keep
 * coming is slow, not stalled (a slow link shared by an image's layers), and says so
 * at debug level: in a healthy pull (bench:swarm, N=16, 10 Mbit/s, five layers) 249 of
 * 268 such reports came while bytes were arriving.
 */
const STALL_REPORT_MS = 5_000;
/** Schedule calls that may fail in a row before this download stops relying on the supernode. */
const MAX_SCHEDULE_FAILURES = 3;

export interface DownloadComponents {
  log: Logger;
  store: PieceStoreApi;
  supernodes: SupernodeClient;
  pieces: PieceClient;
  downloadLimiter?: RateLimiter | undefined;
  /** Counts bytes per origin (`peer`, `supernode`). */
  onPieceBytes?: (from: 'peer' | 'supernode', bytes: number) => void;
  metrics?: PeerMetrics | undefined;
  /** Told whenever bytes of this blob arrive (from anyone): the proxy's measure of progress. */
  onProgress?: () => void;
}

export interface DownloadInit {
  info: TaskInfo;
  supernodeUrl: string;
  peerId: string;
  advertiseUrl: string;
  zone?: string | undefined;
  pieceWindow: number;
  onDone: () => void;
}

/**
 * How a download with pieces missing stands, for its report (see STALL_REPORT_MS):
 * `stalled` when no byte arrived for STALL_REPORT_MS, `slow` when bytes arrive but
 * no piece landed for as long, else `moving` (or reported less than STALL_REPORT_MS ago).
 */
export function stallState(nowMs: number, at: { lastPieceMs: number; lastByteMs: number; lastReportMs: number }): 'moving' | 'slow' | 'stalled' {
  if (nowMs - at.lastPieceMs < STALL_REPORT_MS || nowMs - at.lastReportMs < STALL_REPORT_MS) return 'moving';
  return nowMs - at.lastByteMs >= STALL_REPORT_MS ? 'stalled' : 'slow';
}

/**
 * One blob being filled on this node. The supernode's scheduler says which
 * pieces to fetch and from whom (other peers first, its own cache as the seed
 * of last resort); up to `pieceWindow` pieces are in flight, each verified
 * against the hash the supernode recorded before it is stored — and so before
 * this peer serves it onward. A parent that fails (bad bytes, stall, refusal)
 * is reported and the next candidate is tried. Pieces a reader waits for are
 * asked for first.
 */
export class Download {
  readonly digest: Digest;
  readonly layout: PieceLayout;
  private readonly log: Logger;
  private readonly components: DownloadComponents;
  private readonly init: DownloadInit;
  private readonly abort = new AbortController();
  private readonly inflight = new Set<number>();
  private readonly newlyVerified: number[] = [];
  private readonly failures: NonNullable<ScheduleRequest['failures']> = [];
  /** Reader cursors (piece index each reader waits for next). */
  private readonly cursors = new Map<symbol, number>();
  private readers = 0;
  private orphanTimer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private poked = false;
  /** Whether a schedule call that may be held is out (see reportFailures). */
  private asking = false;
  /** A report-only schedule call is out. */
  private reporting = false;
  /** When a piece last landed (or the download began), and when a stall was last reported. */
  private lastProgressMs = Date.now();
  /** When a byte of any piece body last arrived. */
  private lastByteMs = Date.now();
  private lastStallReportMs = 0;
  /** The last schedule answer, for the stall report. */
  private lastAnswer: { free: number; got: number; atMs: number } | undefined;
  /** The supernode's answer to "vouch for the piece hashes" (see certify), once asked: whether the store took them as certified. */
  private certification: Promise<boolean> | undefined;
  /** Bytes by origin, for X-Shoal-Source and metrics. */
  readonly bytesFrom = { peer: 0, supernode: 0 };
  /** Per piece, where its last write came from (0 not fetched here, 1 a peer, 2 the supernode). */
  private readonly pieceOrigin: Uint8Array;
  /** Byte counts of the piece bodies in flight; cuts a parent that trickles. */
  private readonly meters: FetchMeters;
  readonly done: Promise<void>;

  constructor(components: DownloadComponents, init: DownloadInit) {
    this.digest = parseDigest(init.info.digest);
    this.layout = { blobSizeBytes: init.info.sizeBytes, pieceSizeBytes: init.info.pieceSizeBytes, pieceCount: init.info.pieceCount };
    this.log = components.log.child({ module: 'download', digest: this.digest });
    this.pieceOrigin = new Uint8Array(this.layout.pieceCount);
    this.components = components;
    this.init = init;
    this.meters = new FetchMeters(() => {
      this.lastByteMs = Date.now();
      components.onProgress?.();
    });
    // Hashes that came with a complete blob were certified when the download began.
    this.certification = init.info.complete ? Promise.resolve(true) : undefined;
    // Every piece in flight and every reader listens on it: more than Node's default 10.
    setMaxListeners(Math.max(64, init.pieceWindow * 4), this.abort.signal);
    this.done = this.run().finally(init.onDone);
    this.done.catch(() => undefined);
  }

  /** Aborted (with the cause) when the download fails or is cancelled: readers wait on it. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /**
   * Where a piece this download stored came from. Known as soon as the piece is
   * readable, unlike bytesFrom, which counts a piece only once its write returned.
   */
  originOf(piece: number): 'peer' | 'supernode' | undefined {
    const origin = this.pieceOrigin[piece];
    return origin === 1 ? 'peer' : origin === 2 ? 'supernode' : undefined;
  }

  /** A reader started; returns its cursor setter and the function to call when it stops. */
  attach(): { setCursor: (piece: number) => void; detach: () => void } {
    this.readers++;
    if (this.orphanTimer !== undefined) {
      clearTimeout(this.orphanTimer);
      this.orphanTimer = undefined;
    }
    const key = Symbol('reader');
    let detached = false;
    return {
      setCursor: (piece) => {
        this.cursors.set(key, piece);
        this.poke();
      },
      detach: () => {
        if (detached) return;
        detached = true;
        this.cursors.delete(key);
        this.readers--;
        if (this.readers === 0 && !this.abort.signal.aborted) {
          this.orphanTimer = setTimeout(() => this.cancel(new Error('no reader left')), ORPHAN_GRACE_MS);
          this.orphanTimer.unref();
        }
      },
    };
  }

  cancel(reason: Error): void {
    this.abort.abort(reason);
    this.poke();
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = undefined;
    if (wake === undefined) this.poked = true;
    else wake();
  }

  /**
   * Sleeps until a piece lands, a reader moves, or `ms` passes. A poke that
   * came while the loop was busy (not napping) is not lost: the next nap
   * returns at once instead of waiting out the whole nap.
   */
  private async nap(ms: number): Promise<void> {
    if (this.poked) {
      this.poked = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      timer.unref();
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Asks for the supernode's certified piece hashes once, when an answer says its copy matched its digest. */
  private certifyOnce(seedComplete: boolean): void {
    if (!seedComplete || this.certification !== undefined) return;
    this.certification = this.certify();
  }

  /**
   * The supernode finished the blob while this node was fetching it: a schedule
   * answer said its copy matched the whole digest (seedComplete), so the piece
   * hashes it holds, all known now, are the blob's. The task info may still say
   * not `complete` (the supernode's datasync and rename can take seconds):
   * a full list is what counts. Given to
   * the store as certified, they spare this node its own SHA-256 pass over the
   * whole blob, which the store has held back for them since the download
   * began (see peer.ts). The trust is the same as for a blob complete from the
   * start (docs/security.md); hashes that contradict the ones already used are
   * refused by the store, and then the node hashes the whole blob itself.
   */
  private async certify(): Promise<boolean> {
    try {
      const info = await this.components.supernodes.taskInfo(this.init.supernodeUrl, this.digest, this.abort.signal);
      if (info.sizeBytes !== this.layout.blobSizeBytes || info.pieceCount !== this.layout.pieceCount || info.pieceSha256.some((sha) => sha === null)) return false;
      await this.components.store.setPieceHashes(this.digest, info.pieceSha256, { certified: true });
      this.log.debug('piece hashes certified by the supernode: no whole-blob pass here');
      return true;
    } catch (err) {
      if (!this.abort.signal.aborted) this.log.warn({ err: (err as Error).message }, 'could not take the supernode\'s certified piece hashes; checking the whole blob here');
      return false;
    }
  }

  private held(piece: number): boolean {
    return this.components.store.hasPiece(this.digest, piece);
  }

  /**
   * Derived from the store's record rather than counted: the loop asks on every
   * turn. A blob the store no longer holds (evicted for room, or dropped as
   * corrupt) ends the download: fetching it again would only fill a record
   * that is gone.
   */
  private missingCount(): number {
    const record = this.components.store.get(this.digest);
    if (record === undefined) throw new Error('the blob left the store while it was being downloaded');
    return this.layout.pieceCount - record.verifiedCount;
  }

  /** The next missing pieces after the slowest reader, not in flight. */
  private urgent(): number[] {
    if (this.cursors.size === 0) return [];
    const out: number[] = [];
    let from = Math.min(...this.cursors.values());
    while (from < this.layout.pieceCount && out.length < URGENT_AHEAD) {
      if (!this.held(from) && !this.inflight.has(from)) out.push(from);
      from++;
    }
    return out;
  }

  private async run(): Promise<void> {
    const startedAt = Date.now();
    let scheduleFailures = 0;
    let idleMs = IDLE_POLL_MIN_MS;
    try {
      while (!this.abort.signal.aborted && this.missingCount() > 0) {
        this.reportStall();
        const free = Math.min(this.init.pieceWindow, this.missingCount()) - this.inflight.size;
        if (free <= 0) {
          // Every missing piece is in flight (or the window is full): wait for one to land.
          await this.nap(IDLE_POLL_MAX_MS);
          continue;
        }
        let assignments;
        const askedAt = performance.now();
        try {
          this.asking = true;
          const answer = await this.components.supernodes.schedule(this.init.supernodeUrl, this.digest, this.scheduleRequest(free, SCHEDULE_WAIT_MS), this.abort.signal);
          if (answer.error !== undefined) throw new SwarmUnavailableError(`supernode: ${answer.error}`);
          this.certifyOnce(answer.seedComplete);
          assignments = answer.assignments;
          scheduleFailures = 0;
          this.lastAnswer = { free, got: assignments.length, atMs: Date.now() };
          this.log.trace({ ms: Math.round(performance.now() - askedAt), free, got: assignments.length }, 'schedule answered');
        } catch (err) {
          if (this.abort.signal.aborted) break;
          scheduleFailures++;
          this.log.warn({ err: (err as Error).message, attempt: scheduleFailures }, 'schedule call failed');
          if (scheduleFailures >= MAX_SCHEDULE_FAILURES) throw new SwarmUnavailableError(`supernode ${this.init.supernodeUrl} stopped answering`, { cause: err });
          await delay(Math.max(50, backoffMs(scheduleFailures, 200, 1_000)), this.abort.signal);
          continue;
        } finally {
          this.asking = false;
        }
        let started = 0;
        for (const a of assignments) {
          // The answer is network input: a piece outside this blob's layout (a supernode
          // holding the blob with another size) would throw in fetchPiece, unhandled.
          if (a.piece >= this.layout.pieceCount) {
            this.log.warn({ piece: a.piece, pieceCount: this.layout.pieceCount }, 'supernode assigned a piece outside the blob; skipped');
            continue;
          }
          if (this.inflight.has(a.piece) || this.held(a.piece)) continue;
          started++;
          this.inflight.add(a.piece);
          void this.fetchPiece(a.piece, a.sha256 ?? this.init.info.pieceSha256[a.piece] ?? undefined, a.candidates).finally(() => {
            this.inflight.delete(a.piece);
            this.poke();
          });
        }
        if (started === 0) {
          // Nothing new to do. The supernode held the answer until now if it could:
          // ask again at once. An empty answer that came back at once is paced.
          if (performance.now() - askedAt < SCHEDULE_WAIT_MS / 2) {
            await this.nap(idleMs);
            idleMs = Math.min(IDLE_POLL_MAX_MS, idleMs * 2);
          }
        } else {
          idleMs = IDLE_POLL_MIN_MS;
          // Ask again at once only if the answer filled every free slot (there may be more);
          // otherwise when a piece lands. Halves the calls a supernode must answer per piece.
          if (assignments.length < free || this.inflight.size >= this.init.pieceWindow) await this.nap(IDLE_POLL_MAX_MS);
        }
      }
      if (this.abort.signal.aborted) throw this.abort.signal.reason;
      // Tell the scheduler about the last pieces at once, so others may fetch them
      // from here: they are servable now, while completing (the whole-digest check,
      // datasync and rename) can take seconds on a busy disk.
      if (this.newlyVerified.length > 0) {
        const answer = await this.components.supernodes
          .schedule(this.init.supernodeUrl, this.digest, this.scheduleRequest(0, undefined))
          .catch(() => undefined);
        // The supernode may have finished just before this node: its hashes still spare the whole-blob pass.
        if (answer?.error === undefined) this.certifyOnce(answer?.seedComplete === true);
      }
      // Every piece is here. Without the supernode's word on the whole blob (it is still
      // fetching it, or did not answer), this node hashes the blob itself.
      if (!(await (this.certification ?? Promise.resolve(false)))) this.components.store.resumeWholeDigest(this.digest);
      await this.components.store.waitForComplete(this.digest, { signal: this.abort.signal });
      this.log.info({ sizeBytes: this.layout.blobSizeBytes, durationMs: Date.now() - startedAt, fromPeers: this.bytesFrom.peer, fromSupernode: this.bytesFrom.supernode }, 'blob downloaded');
    } catch (err) {
      const reason = err instanceof Error ? err : new Error(String(err));
      if (!this.abort.signal.aborted) this.abort.abort(reason);
      this.log.warn({ err: reason.message }, 'download stopped');
      throw reason;
    } finally {
      if (this.orphanTimer !== undefined) clearTimeout(this.orphanTimer);
      this.meters.close();
      // In-flight fetches end with the abort signal; wait so nothing writes after we are done.
      while (this.inflight.size > 0) await this.nap(50);
      // Whoever fills the blob next (a retry, the DHT, the registry) needs the store's own pass.
      this.components.store.resumeWholeDigest(this.digest);
    }
  }

  /**
   * Reports a parent's failure while this download's schedule call is held,
   * in a call of its own that asks for nothing (never held, so it assigns
   * nothing that could be lost): the scheduler frees the parent's slot and may
   * assign the piece again now, not when the hold ends. Ending the held call
   * instead could drop an answer already on its way, and with it assignments
   * the scheduler would count as in flight until they expire.
   */
  private reportFailures(): void {
    if (!this.asking || this.reporting || this.failures.length === 0 || this.abort.signal.aborted) return;
    this.reporting = true;
    const request = this.scheduleRequest(0, undefined);
    void this.components.supernodes.schedule(this.init.supernodeUrl, this.digest, request, this.abort.signal).then(
      () => {
        this.reporting = false;
        // Failures that came meanwhile, while the call is still held.
        this.reportFailures();
      },
      () => {
        this.reporting = false;
        // Not lost: the held call's successor carries them.
        this.failures.unshift(...(request.failures ?? []));
        this.newlyVerified.unshift(...(request.have ?? []));
      },
    );
  }

  /**
   * A schedule call's body, taking the verified pieces and failures not yet reported.
   * Empty lists are left out: a call is a request on the supernode's link, which
   * also carries every piece into the swarm.
   */
  private scheduleRequest(limit: number, waitMs: number | undefined): ScheduleRequest {
    const urgent = limit > 0 ? this.urgent() : [];
    const have = this.newlyVerified.splice(0, MAX_SCHEDULE_PIECES);
    const failures = this.failures.splice(0, MAX_REPORTED_FAILURES);
    return {
      peerId: this.init.peerId,
      advertiseUrl: this.init.advertiseUrl,
      ...(this.init.zone === undefined ? {} : { zone: this.init.zone }),
      limit,
      ...(waitMs === undefined ? {} : { waitMs }),
      ...(urgent.length > 0 ? { urgent } : {}),
      ...(have.length > 0 ? { have } : {}),
      ...(failures.length > 0 ? { failures } : {}),
    };
  }

  /** No piece has landed for STALL_REPORT_MS: says what this download is waiting for (at most every STALL_REPORT_MS). */
  private reportStall(): void {
    const now = Date.now();
    const state = stallState(now, { lastPieceMs: this.lastProgressMs, lastByteMs: this.lastByteMs, lastReportMs: this.lastStallReportMs });
    if (state === 'moving') return;
    this.lastStallReportMs = now;
    if (state === 'stalled') this.components.metrics?.stalled();
    (state === 'stalled' ? this.log.warn : this.log.debug).call(
      this.log,
      {
        stalledMs: now - this.lastProgressMs,
        lastByteAgoMs: now - this.lastByteMs,
        missing: this.missingCount(),
        inflight: [...this.inflight].slice(0, 16),
        readersAt: [...this.cursors.values()].slice(0, 8),
        lastAnswer: this.lastAnswer === undefined ? undefined : { ...this.lastAnswer, agoMs: now - this.lastAnswer.atMs },
        failuresQueued: this.failures.length,
      },
      state === 'stalled' ? 'download stalled: no byte arrived' : 'download slow: no piece landed',
    );
  }

  /** Tries the candidates in order; a failure is reported with the next schedule call. */
  private async fetchPiece(piece: number, knownSha256: string | undefined, candidates: ReadonlyArray<{ kind: 'peer'; peerId: string; url: string } | { kind: 'seed' }>): Promise<void> {
    const { length } = pieceSpan(this.layout, piece);
    const assignedAt = performance.now();
    /** The supernode's hash, asked for once when a peer passes on a copy it still receives (no hash came with the assignment). */
    let hashLookup: Promise<string> | undefined;
    /** Why that lookup failed: the supernode's fault, not the relaying peer's. */
    let lookupFailure: unknown;
    for (const candidate of candidates) {
      if (this.abort.signal.aborted) return;
      const parentId = candidate.kind === 'seed' ? 'seed' : candidate.peerId;
      let watching: { meter: Meter; stop: () => void } | undefined;
      try {
        let body: Readable;
        let sha256: ExpectedSha256 | undefined = knownSha256;
        if (candidate.kind === 'seed') {
          // The seed is trusted: for a piece it has just received, its answer carries the
          // hash; for one still arriving from the registry, a trailer after the bytes does.
          const r = await this.components.supernodes.fetchPiece(this.init.supernodeUrl, this.digest, piece, this.abort.signal);
          if (sha256 !== undefined && typeof r.sha256 === 'string' && r.sha256 !== sha256) {
            destroyQuietly(r.body);
            throw new Error(`seed's hash for piece ${piece} differs from the schedule's`);
          }
          sha256 ??= r.sha256;
          body = r.body;
        } else if (sha256 !== undefined) {
          body = await this.components.pieces.fetchPiece(candidate.url, this.digest, piece, this.abort.signal);
        } else {
          // The piece is still arriving at the supernode too, and this peer passes on its copy as
          // it comes. Never trusted on its own: the bytes are checked against the supernode's hash,
          // asked for now (answered once the supernode's copy matched, before the peer's can).
          if (hashLookup === undefined) {
            hashLookup = this.components.supernodes.pieceSha256(this.init.supernodeUrl, this.digest, piece, this.abort.signal);
            hashLookup.catch((err: unknown) => {
              lookupFailure = err;
            });
          }
          const lookup = hashLookup;
          sha256 = () => lookup;
          body = await this.components.pieces.fetchPiece(candidate.url, this.digest, piece, this.abort.signal);
        }
        // A peer's copy of a piece still arriving at the supernode moves at the registry's
        // pace, which may pause for seconds (one of the supernode's parallel fetches
        // backing off): judged only once the supernode's copy matched (its hash came).
        // Cut for 0 B/s over 3 s before that, a relay failed every relay fed by it: 104
        // bodies of one piece in one pull (bench:swarm, N=16, 10 layers, 10 Mbit/s).
        const relaysArriving = candidate.kind === 'peer' && knownSha256 === undefined;
        const handle = this.meters.watch(body, {
          judged: candidate.kind === 'peer' && !relaysArriving,
          label: parentId,
          // Bytes from the seed prove the supernode alive to the liveness checks (see SupernodeClient.heard).
          ...(candidate.kind === 'seed' ? { onBytes: () => this.components.supernodes.heard(this.init.supernodeUrl) } : {}),
        });
        watching = handle;
        if (relaysArriving) hashLookup?.then(handle.judge, () => undefined);
        const limited = this.components.downloadLimiter === undefined ? body : await throttled(body, this.components.downloadLimiter);
        const fetchedAt = performance.now();
        // Set before the write: the piece may be readable (and labelled) before writePiece returns.
        this.pieceOrigin[piece] = candidate.kind === 'seed' ? 2 : 1;
        await this.components.store.writePiece(this.digest, piece, limited, { expectedSha256: sha256, signal: this.abort.signal });
        this.log.trace({ piece, parentId, ms: Math.round(performance.now() - fetchedAt), sinceAssignedMs: Math.round(performance.now() - assignedAt) }, 'piece stored');
        const from = candidate.kind === 'seed' ? 'supernode' : 'peer';
        this.bytesFrom[from] += length;
        this.components.onPieceBytes?.(from, length);
        this.newlyVerified.push(piece);
        this.lastProgressMs = Date.now();
        return;
      } catch (err) {
        if (this.abort.signal.aborted) return;
        if (lookupFailure !== undefined && err === lookupFailure) {
          // No hash to check the peer's bytes against: held against the supernode (briefly), and
          // the piece is scheduled again rather than tried on the other peers without a hash.
          this.failures.push({ parentId: 'seed', piece, kind: 'unreachable' });
          this.reportFailures();
          this.components.metrics?.parentFailed('supernode', 'unreachable');
          this.log.warn({ piece, parentId, err: (err as Error).message }, "no supernode hash for a peer's copy of a piece; it is scheduled again");
          return;
        }
        const kind: FailureKindWire = watching?.meter.failure?.kind ?? failureKindOf(err);
        this.failures.push({ parentId, piece, kind });
        this.reportFailures();
        this.components.metrics?.parentFailed(candidate.kind === 'seed' ? 'supernode' : 'peer', kind);
        (kind === 'bad-piece' || watching?.meter.failure !== undefined ? this.log.warn.bind(this.log) : this.log.debug.bind(this.log))(
          { piece, parentId, kind, err: (watching?.meter.failure ?? (err as Error)).message },
          'parent failed a piece',
        );
      } finally {
        watching?.stop();
      }
    }
  }
}

async function throttled(body: Readable, limiter: RateLimiter): Promise<Readable> {
  const gate = limiter.throttle();
  void pipeline(body, gate).catch((err: unknown) => gate.destroy(err as Error));
  return gate;
}
