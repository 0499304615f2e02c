import test from 'ava';
import { Scheduler } from '../src/scheduler/index.js';

const BLOB = `sha256:${'3'.repeat(64)}`;

const candidates = (s: Scheduler, child: string): string[] =>
  (s.schedule(child, BLOB, { limit: 1 })[0]?.candidates ?? []).map((c) => (c.kind === 'peer' ? c.peerId : 'seed'));

test('a parent reported for bad bytes is quarantined for everybody for quarantineMs; the seed never is', (t) => {
  let now = 0;
  const s = new Scheduler({ clock: { now: () => now }, random: () => 0.5 }, { quarantineMs: 300_000, failurePenaltyMs: 30_000 });
  s.addBlob(BLOB, 1);
  for (const id of ['liar', 'honest', 'a', 'b', 'c', 'd']) s.addPeer({ peerId: id, url: `http://${id}` });
  s.peerHas('liar', BLOB, [0]);
  s.seedHas(BLOB, [0]);

  t.deepEqual(candidates(s, 'a'), ['liar', 'seed']);
  s.reportFailure('a', 'liar', BLOB, 0, 'bad-piece');
  t.deepEqual(candidates(s, 'b'), ['seed'], 'b never reported liar, yet avoids it');
  s.peerHas('honest', BLOB, [0]);
  t.deepEqual(candidates(s, 'c'), ['honest', 'seed']);

  // A bad piece "from the seed" only makes the reporter avoid it (the seed checks every piece itself).
  s.reportFailure('c', 'seed', BLOB, 0, 'bad-piece');
  t.deepEqual(candidates(s, 'c'), ['honest']);
  t.deepEqual(candidates(s, 'd'), ['honest', 'seed']);

  now += 299_999;
  s.addPeer({ peerId: 'e', url: 'http://e' });
  t.false(candidates(s, 'e').includes('liar'));
  now += 1;
  s.addPeer({ peerId: 'f', url: 'http://f' });
  t.true(candidates(s, 'f').includes('liar'), 'quarantine over');
});
