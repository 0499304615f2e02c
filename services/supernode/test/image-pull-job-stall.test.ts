import test from 'ava';
import { silentLogger, type PreheatJob } from '@shoal/core';
import { ImagePullJobController, type ImagePullJobObject, type ImagePullJobStatus, type JobEvent, type JobKind, type KubeAccess, type LeaseRecord, type PreheatStarter } from '../src/controller/index.js';
import type { PreheatStart } from '../src/preheat.js';

// Stall detection: an attempt whose node stores no new byte for
// pullPolicy.stallSeconds fails and is retried; one whose bytes keep coming,
// however slowly, runs on past that window. The preheat side is a stand-in
// here (its node never progresses, or progresses on a timer), and so is the
// Kubernetes API (a STUB holding one job).

const JOB_ID = '00000000-0000-4000-8000-000000000001';
const TOTAL = 10_000;

/** A preheat job for one node whose bytes follow `bytesAt(ms since start)`; done at TOTAL. */
class ScriptedPreheat implements PreheatStarter {
  readonly started: PreheatStart[] = [];
  readonly cancelled: string[] = [];
  private startedAt = 0;
  constructor(private readonly bytesAt: (elapsedMs: number) => number) {}
  async start(request: PreheatStart): Promise<PreheatJob> {
    this.started.push(request);
    this.startedAt = Date.now();
    return this.get(JOB_ID);
  }
  get(id: string): PreheatJob {
    const bytes = Math.min(TOTAL, this.bytesAt(Date.now() - this.startedAt));
    const done = bytes >= TOTAL;
    return {
      id,
      image: 'registry.test/app:v1',
      platforms: [],
      state: done ? 'done' : 'running',
      blobs: [],
      bytesDone: TOTAL,
      bytesTotal: TOTAL,
      startedAt: new Date(this.startedAt).toISOString(),
      nodes: [{ name: 'node-a', state: done ? 'done' : 'running', blobsDone: done ? 1 : 0, blobsTotal: 1, bytesDone: bytes, bytesTotal: TOTAL, runtime: done ? 'pulled' : 'waiting' }],
    };
  }
  cancel(id: string): void {
    this.cancelled.push(id);
  }
}

/**
 * A STUB of the Kubernetes API for one job (the FakeKubeApi server tests the
 * HTTP side elsewhere): lists the job once, holds the watch open, records
 * status patches and Events.
 */
class OneJobKube implements KubeAccess {
  status: ImagePullJobStatus = {};
  readonly events: JobEvent[] = [];
  constructor(private readonly job: ImagePullJobObject) {}
  async listJobs(kind: JobKind): Promise<{ items: ImagePullJobObject[]; resourceVersion: string; truncated: boolean }> {
    return { items: kind === 'ImagePullJob' ? [this.job] : [], resourceVersion: '1', truncated: false };
  }
  async watchJobs(_kind: JobKind, _rv: string, _onEvent: unknown, signal: AbortSignal): Promise<void> {
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  }
  async patchStatus(_kind: JobKind, _ns: string, _name: string, status: ImagePullJobStatus): Promise<void> {
    this.status = { ...this.status, ...status };
  }
  async deleteJob(): Promise<void> {}
  async listNodes(): Promise<never[]> {
    return [];
  }
  async listPods(): Promise<never[]> {
    return [];
  }
  async createEvent(_job: ImagePullJobObject, event: JobEvent): Promise<void> {
    this.events.push(event);
  }
  async getSecret(): Promise<undefined> {
    return undefined;
  }
  async getLease(): Promise<undefined> {
    return undefined;
  }
  async createLease(lease: LeaseRecord): Promise<LeaseRecord> {
    return lease;
  }
  async updateLease(lease: LeaseRecord): Promise<LeaseRecord> {
    return lease;
  }
}

async function run(t: import('ava').ExecutionContext, preheat: ScriptedPreheat, name: string): Promise<ImagePullJobStatus & { events: JobEvent[] }> {
  const kube = new OneJobKube({
    kind: 'ImagePullJob',
    metadata: { name, namespace: 'default', uid: `uid-${name}`, generation: 1, resourceVersion: '1' },
    spec: { image: 'registry.test/app:v1', selector: { names: ['node-a'] }, pullPolicy: { timeoutSeconds: 60, stallSeconds: 1, backoffLimit: 1 } },
    status: {},
  });
  const controller = new ImagePullJobController(
    { log: silentLogger(), kube, preheat, peerNodeNames: () => new Set(['node-a']) },
    { pollMs: 20, resyncMs: 100, retryDelayMs: 10, watchBackoffMs: 20, maxWatchBackoffMs: 50 },
  );
  controller.start();
  t.teardown(() => controller.close());
  const until = Date.now() + 15_000;
  while (kube.status.completionTime === undefined) {
    if (Date.now() > until) throw new Error(`not completed: ${JSON.stringify(kube.status)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { ...kube.status, events: kube.events };
}

test('a node that stores no new byte for stallSeconds fails the attempt, which is retried; then the node fails with an event', async (t) => {
  const preheat = new ScriptedPreheat(() => 1234); // some bytes, then nothing
  const started = Date.now();
  const status = await run(t, preheat, 'stalls');
  t.is(status.failed, 1);
  t.regex(String(status.message), /node-a: stalled: no byte progress for 1 s \(after 2 attempts\)/);
  t.is(preheat.started.length, 2, 'one try and one retry');
  t.is(preheat.cancelled.length, 2, 'each stalled preheat job was cancelled');
  t.true(Date.now() - started >= 2_000, 'each attempt waited the stall window');
  t.deepEqual(status.events.map((e) => e.reason), ['PullImageFailed']);
});

test('bytes that keep arriving, however slowly, are not a stall: the attempt runs past stallSeconds and succeeds', async (t) => {
  // TOTAL bytes over 2.5 s: far longer than the 1 s stall window, never still for it.
  const preheat = new ScriptedPreheat((ms) => Math.floor((ms / 2_500) * TOTAL));
  const status = await run(t, preheat, 'slow');
  t.is(status.succeeded, 1, JSON.stringify(status));
  t.is(preheat.started.length, 1);
  t.deepEqual(preheat.cancelled, []);
  t.like(status.progress, { bytesDone: TOTAL, bytesTotal: TOTAL });
  t.deepEqual(status.events.map((e) => e.reason), ['PullImageSucceed']);
});
