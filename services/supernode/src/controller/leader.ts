import { pause, type Logger } from '@shoal/core';
import { KubeConflictError } from '../errors.js';
import { statusCodeOf, type KubeAccess, type LeaseRecord } from './kube.js';

/** The Lease every supernode replica competes for. */
export const LEADER_LEASE_NAME = 'shoal-image-pull-jobs';
/** A leader that has not renewed for this long is replaced. Seconds (client-go's default). */
export const DEFAULT_LEASE_DURATION_SECONDS = 15;
/** A leader that could not renew for this long stops leading (before anyone may take over). Milliseconds. */
export const DEFAULT_RENEW_DEADLINE_MS = 10_000;
/** How often the Lease is tried or renewed. Milliseconds. */
export const DEFAULT_RETRY_PERIOD_MS = 2_000;

export interface LeaderElectionInit {
  namespace: string;
  /** Unique per replica: the pod name plus a random suffix. */
  identity: string;
  /** @default LEADER_LEASE_NAME */
  leaseName?: string | undefined;
  /** @default DEFAULT_LEASE_DURATION_SECONDS */
  leaseDurationSeconds?: number | undefined;
  /** @default DEFAULT_RENEW_DEADLINE_MS */
  renewDeadlineMs?: number | undefined;
  /** @default DEFAULT_RETRY_PERIOD_MS */
  retryPeriodMs?: number | undefined;
}

export interface LeaderCallbacks {
  /** This replica now leads: start the work. */
  started(): void;
  /** This replica lost the Lease (or is shutting down): stop the work, at once. */
  stopped(): Promise<void>;
}


/** RFC 3339 with microseconds, as the API's MicroTime. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's
 * leaderelection does it: every replica tries to create or take over the
 * Lease (optimistic concurrency on resourceVersion), the holder renews it
 * every retry period, and a holder that has not renewed within
 * leaseDurationSeconds (measured on this replica's clock from when it saw the
 * record change) is replaced. A leader that cannot renew within the renew
 * deadline stops leading before its Lease can expire, so two replicas never
 * act at once for longer than clock skew allows.
 */
export class LeaderElector {
  private readonly log: Logger;
  private readonly kube: KubeAccess;
  private readonly namespace: string;
  private readonly name: string;
  readonly identity: string;
  private readonly durationS: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private readonly stop = new AbortController();
  private loop: Promise<void> | undefined;
  private leading = false;
  /** The record last seen, and when (this replica's clock): another holder's expiry is judged from here. */
  private observed: { record: LeaseRecord; atMs: number } | undefined;

  constructor(components: { log: Logger; kube: KubeAccess }, init: LeaderElectionInit) {
    this.log = components.log.child({ module: 'leader-election' });
    this.kube = components.kube;
    this.namespace = init.namespace;
    this.name = init.leaseName ?? LEADER_LEASE_NAME;
    this.identity = init.identity;
    this.durationS = Math.max(1, init.leaseDurationSeconds ?? DEFAULT_LEASE_DURATION_SECONDS);
    this.retryMs = Math.max(1, init.retryPeriodMs ?? DEFAULT_RETRY_PERIOD_MS);
    this.renewDeadlineMs = Math.min(Math.max(this.retryMs, init.renewDeadlineMs ?? DEFAULT_RENEW_DEADLINE_MS), this.durationS * 1000);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  run(callbacks: LeaderCallbacks): void {
    if (this.loop !== undefined) return;
    this.loop = this.electLoop(callbacks).catch((err: unknown) => this.log.error({ err }, 'leader election stopped'));
  }

  /** Stops competing; a leader stops its work and gives the Lease up so another replica takes over at once. */
  async close(): Promise<void> {
    this.stop.abort(new Error('shutting down'));
    await this.loop;
  }

  private async electLoop(callbacks: LeaderCallbacks): Promise<void> {
    const signal = this.stop.signal;
    let lastRenewMs = 0;
    while (!signal.aborted) {
      let held = false;
      try {
        held = await this.tryAcquireOrRenew();
      } catch (err) {
        this.log.warn({ err: err instanceof Error ? err.message : String(err), code: statusCodeOf(err) }, 'could not read or write the leader Lease');
      }
      const now = Date.now();
      if (held) {
        lastRenewMs = now;
        if (!this.leading) {
          this.leading = true;
          this.log.info({ identity: this.identity, lease: `${this.namespace}/${this.name}` }, 'leading: running the ImagePullJob controller');
          callbacks.started();
        }
      } else if (this.leading && now - lastRenewMs >= this.renewDeadlineMs) {
        this.leading = false;
        this.log.warn({ identity: this.identity, renewDeadlineMs: this.renewDeadlineMs }, 'lost the leader Lease: stopping the ImagePullJob controller');
        await callbacks.stopped();
      }
      await pause(this.retryMs, signal);
    }
    if (this.leading) {
      this.leading = false;
      await callbacks.stopped();
      await this.release();
    }
  }

  /** True when this replica holds the Lease after the call. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const nowMs = Date.now();
    const now = microTime(nowMs);
    const current = await this.kube.getLease(this.namespace, this.name);
    if (current === undefined) {
      const created = await this.kube
        .createLease({ namespace: this.namespace, name: this.name, resourceVersion: '', holderIdentity: this.identity, leaseDurationSeconds: this.durationS, acquireTime: now, renewTime: now, leaseTransitions: 0 })
        .catch((err: unknown) => {
          if (err instanceof KubeConflictError) return undefined; // another replica created it first
          throw err;
        });
      if (created !== undefined) this.observed = { record: created, atMs: nowMs };
      return created !== undefined;
    }
    if (this.observed === undefined || this.observed.record.resourceVersion !== current.resourceVersion) this.observed = { record: current, atMs: nowMs };
    const mine = current.holderIdentity === this.identity;
    const durationMs = (current.leaseDurationSeconds ?? this.durationS) * 1000;
    if (!mine && current.holderIdentity !== undefined && this.observed.atMs + durationMs > nowMs) return false; // held, and renewed recently
    const next: LeaseRecord = {
      ...current,
      holderIdentity: this.identity,
      leaseDurationSeconds: this.durationS,
      renewTime: now,
      acquireTime: mine ? current.acquireTime : now,
      leaseTransitions: mine ? current.leaseTransitions : current.leaseTransitions + 1,
    };
    try {
      const updated = await this.kube.updateLease(next);
      this.observed = { record: updated, atMs: nowMs };
      if (!mine) this.log.info({ previous: current.holderIdentity, transitions: next.leaseTransitions }, 'took over the leader Lease');
      return true;
    } catch (err) {
      if (err instanceof KubeConflictError) return false; // someone else wrote it first
      throw err;
    }
  }

  /** Gives the Lease up (holder cleared), so the next replica need not wait for it to expire. */
  private async release(): Promise<void> {
    try {
      const current = await this.kube.getLease(this.namespace, this.name);
      if (current?.holderIdentity !== this.identity) return;
      await this.kube.updateLease({ ...current, holderIdentity: undefined, leaseDurationSeconds: 1, renewTime: microTime(Date.now()) });
      this.log.info('released the leader Lease');
    } catch (err) {
      this.log.debug({ err: err instanceof Error ? err.message : String(err) }, 'could not release the leader Lease');
    }
  }
}
