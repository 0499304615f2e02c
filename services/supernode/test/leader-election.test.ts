import test from 'ava';
import { silentLogger } from '@shoal/core';
import { LeaderElector } from '../src/controller/index.js';
import { KubeClient } from '../src/controller/kube-client.js';
import { FakeKubeApi } from './helpers/fake-kube-api.js';

// Several supernode replicas run the ImagePullJob controller; exactly one may
// act. They compete for a coordination.k8s.io Lease on the FAKE API server
// (create answers 409 when it exists, a write at a stale resourceVersion
// answers 409), as client-go's leader election does.

const TIMING = { leaseDurationSeconds: 1, renewDeadlineMs: 600, retryPeriodMs: 50 };

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

test('three replicas: exactly one leads; when it stops, another takes over, and never two at once', async (t) => {
  const kube = await FakeKubeApi.start();
  t.teardown(() => kube.close());
  const client = new KubeClient(kube.kubeConfig(), undefined);
  const leading = new Set<string>();
  let overlap = 0;
  const electors = ['a', 'b', 'c'].map((id) => new LeaderElector({ log: silentLogger(), kube: client }, { namespace: 'shoal-system', identity: `replica-${id}`, ...TIMING }));
  for (const e of electors) {
    e.run({
      started: () => {
        leading.add(e.identity);
        if (leading.size > 1) overlap++;
      },
      stopped: async () => {
        leading.delete(e.identity);
      },
    });
  }
  t.teardown(async () => {
    for (const e of electors) await e.close();
  });
  await waitUntil(() => leading.size > 0, 5_000);
  await sleep(300);
  t.is(leading.size, 1, `one leader: ${[...leading].join(', ')}`);
  const first = [...leading][0] as string;
  const lease = kube.getLease('shoal-system', 'shoal-image-pull-jobs') as { spec: { holderIdentity: string; leaseTransitions: number } };
  t.is(lease.spec.holderIdentity, first);
  t.true(kube.leaseConflicts > 0 || kube.requests.filter((r) => r.method === 'POST' && r.path.includes('/leases')).length === 1, 'the others lost the race to create it, or saw it exists');

  // The leader shuts down: it gives the Lease up, and another replica takes over well before the lease duration.
  const leader = electors.find((e) => e.identity === first) as LeaderElector;
  const stoppedAt = Date.now();
  await leader.close();
  t.false(leading.has(first));
  await waitUntil(() => leading.size === 1, 2_000);
  t.true(Date.now() - stoppedAt < 1_000, 'taken over at once after a release');
  const second = [...leading][0] as string;
  t.not(second, first);
  const after = kube.getLease('shoal-system', 'shoal-image-pull-jobs') as { spec: { holderIdentity: string; leaseTransitions: number } };
  t.is(after.spec.holderIdentity, second);
  t.true(after.spec.leaseTransitions >= 1);
  await sleep(500);
  t.is(leading.size, 1, 'still exactly one');
  t.is(overlap, 0, 'never two leaders at once');
});

test('a leader that cannot renew stops leading; a replica takes over only after the lease expired', async (t) => {
  const kube = await FakeKubeApi.start();
  t.teardown(() => kube.close());
  const client = new KubeClient(kube.kubeConfig(), undefined);
  const events: string[] = [];
  const a = new LeaderElector({ log: silentLogger(), kube: client }, { namespace: 'ns', identity: 'a', ...TIMING });
  a.run({ started: () => events.push('a started'), stopped: async () => void events.push('a stopped') });
  t.teardown(() => a.close());
  await waitUntil(() => events.includes('a started'), 2_000);
  // a is cut off from the API server (a partition): every Lease write it makes from now on fails.
  kube.failLeaseWritesBy.add('a');
  const b = new LeaderElector({ log: silentLogger(), kube: client }, { namespace: 'ns', identity: 'b', ...TIMING });
  const bStartedAt: number[] = [];
  b.run({ started: () => void bStartedAt.push(Date.now()), stopped: async () => undefined });
  t.teardown(() => b.close());
  const partitionedAt = Date.now();
  await waitUntil(() => events.includes('a stopped'), 3_000);
  await waitUntil(() => bStartedAt.length === 1, 3_000);
  t.true((bStartedAt[0] as number) - partitionedAt >= 900, 'b waited for the lease to expire');
  t.deepEqual(events, ['a started', 'a stopped']);
});

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error('timed out');
    await sleep(10);
  }
}
