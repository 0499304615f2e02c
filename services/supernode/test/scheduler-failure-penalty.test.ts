import test from 'ava';
import { Scheduler } from '../src/scheduler/index.js';

const BLOB = `sha256:${'1'.repeat(64)}`;

const parents = (s: Scheduler, child: string): string[] =>
  (s.schedule(child, BLOB, { limit: 1 })[0]?.candidates ?? []).map((c) => (c.kind === 'peer' ? c.peerId : 'seed')).sort();

test('a parent the child reported failing is avoided by that child for failurePenaltyMs; busy only briefly', (t) => {
  let now = 1_000;
  const s = new Scheduler({ clock: { now: () => now }, random: () => 0.5 }, { failurePenaltyMs: 30_000, maxUploadsPerPeer: 100 });
  s.addBlob(BLOB, 1);
  for (const id of ['good', 'spare', 'c', 'd', 'e']) s.addPeer({ peerId: id, url: `http://${id}` });
  s.peerHas('good', BLOB, [0]);
  s.peerHas('spare', BLOB, [0]);

  t.deepEqual(parents(s, 'c'), ['good', 'spare']);
  s.reportFailure('c', 'good', BLOB, 0, 'stalled');
  t.is(s.stats().inflightAssignments, 0, 'the report ends the failed assignment');
  t.deepEqual(parents(s, 'c'), ['spare'], 'c avoids good');
  t.deepEqual(parents(s, 'd'), ['good', 'spare'], 'others do not');
  s.reportFailure('c', 'spare', BLOB, 0, 'unreachable');
  t.deepEqual(parents(s, 'c'), [], 'no parent left for c (the seed does not have the piece)');

  now += 29_999;
  t.deepEqual(parents(s, 'c'), []);
  now += 1;
  t.deepEqual(parents(s, 'c'), ['good', 'spare'], 'the penalty is over');

  // 'busy' means healthy but full: avoided for a second only.
  s.reportFailure('e', 'good', BLOB, 0, 'busy');
  t.deepEqual(parents(s, 'e'), ['spare']);
  s.reportFailure('e', 'spare', BLOB, 0, 'busy');
  now += 1_000;
  t.deepEqual(parents(s, 'e'), ['good', 'spare']);
});
