import test from 'ava';
import { Scheduler } from '../src/scheduler/index.js';

const BLOB = `sha256:${'c'.repeat(64)}`;
const OTHER = `sha256:${'d'.repeat(64)}`;

test('parents in the child’s zone come first, even when busier than parents elsewhere', (t) => {
  let seed = 7;
  const random = (): number => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
  const s = new Scheduler({ clock: { now: () => 0 }, random }, { candidatesPerPiece: 3 });
  s.addBlob(BLOB, 1);
  s.addBlob(OTHER, 2);
  s.addPeer({ peerId: 'near', url: 'http://near', zone: 'eu-1a' });
  for (let i = 0; i < 5; i++) s.addPeer({ peerId: `far${i}`, url: `http://far${i}`, zone: 'eu-1b' });
  for (const id of ['child', 'x', 'y']) s.addPeer({ peerId: id, url: `http://${id}`, zone: id === 'child' ? 'eu-1a' : 'eu-1c' });
  s.peerHas('near', BLOB, [0]);
  for (let i = 0; i < 5; i++) s.peerHas(`far${i}`, BLOB, [0]);
  // Load `near` with two uploads of another blob only it holds.
  s.peerHas('near', OTHER, [0, 1]);
  t.is(s.schedule('x', OTHER, { limit: 1 })[0]?.candidates[0]?.kind, 'peer');
  t.is(s.schedule('y', OTHER, { limit: 1 })[0]?.candidates[0]?.kind, 'peer');

  const [a] = s.schedule('child', BLOB, { limit: 1 });
  t.truthy(a);
  const ids = (a?.candidates ?? []).map((c) => (c.kind === 'peer' ? c.peerId : 'seed'));
  t.is(ids.length, 3);
  t.is(ids[0], 'near');
  t.true(ids.slice(1).every((id) => id.startsWith('far')));

  // A child without a zone just gets the least loaded: not `near`.
  s.addPeer({ peerId: 'nozone', url: 'http://nozone' });
  const [b] = s.schedule('nozone', BLOB, { limit: 1 });
  const first = b?.candidates[0];
  t.true(first?.kind === 'peer' && first.peerId.startsWith('far'));
});
