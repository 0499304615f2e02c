/**
 * A schedule call that cannot be held (its blob already holds
 * MAX_WAITERS_PER_BLOB calls) is answered at once. waitForChange used to
 * return at once without saying so, and the route asked the scheduler again
 * and again until the call's wait ran out: a busy loop for up to its waitMs.
 */
import test from 'ava';
import { silentLogger, type Digest } from '@shoal/core';
import { PeerTable } from '../src/peer-table.js';
import { Scheduler } from '../src/scheduler/index.js';
import { MAX_WAITERS_PER_BLOB, Swarm } from '../src/swarm.js';
import { tempStore } from './helpers/temp-store.js';

const DIGEST = `sha256:${'7'.repeat(64)}` as Digest;

test('a blob with its held calls at the limit says a further call cannot wait, at once', async (t) => {
  const store = await tempStore(t, 'swarm-held');
  await store.begin(DIGEST, 4 * 1024 * 1024);
  // The swarm's wait timers are unref'd (a server's sockets keep the process up): so is this test.
  const keepAlive = setInterval(() => undefined, 1_000);
  t.teardown(() => clearInterval(keepAlive));
  const swarm = new Swarm({ log: silentLogger(), store, scheduler: new Scheduler({ clock: { now: () => Date.now() } }), peers: new PeerTable() });

  t.false(await swarm.waitForChange(DIGEST, 5_000, AbortSignal.abort()), 'an aborted call does not wait');
  t.true(await swarm.waitForChange(DIGEST, 20, new AbortController().signal), 'a call waits until its time is up');

  const held = new AbortController();
  const waits = Array.from({ length: MAX_WAITERS_PER_BLOB }, () => swarm.waitForChange(DIGEST, 60_000, held.signal));
  const startedAt = performance.now();
  t.false(await swarm.waitForChange(DIGEST, 5_000, new AbortController().signal));
  t.true(performance.now() - startedAt < 1_000, 'answered at once, not after its wait');
  held.abort();
  t.deepEqual(new Set(await Promise.all(waits)), new Set([true]), 'the held calls end when their requests go away');
});
