import test from 'ava';
import { LARGE_SWARM_MEMBERS, Scheduler } from '../src/scheduler/index.js';

const BLOB = `sha256:${'7'.repeat(64)}`;

test('a child gets at most maxUploadsPerPeer busy-able parents; beyond that, only idle ones', (t) => {
  const s = new Scheduler({ clock: { now: () => 0 }, random: () => 0.5 }, { maxUploadsPerPeer: 2 });
  s.addBlob(BLOB, 16);
  const all = Array.from({ length: 16 }, (_, i) => i);
  for (const id of ['p1', 'p2', 'p3', 'p4', 'c', 'd', 'e', 'f']) s.addPeer({ peerId: id, url: `http://${id}` });
  // Two holders per piece (rare enough to use every slot of a parent, RARE_PIECE_HOLDERS): p1, p2 the even ones, p3, p4 the odd ones.
  for (const id of ['p1', 'p2']) s.peerHas(id, BLOB, all.filter((p) => p % 2 === 0));
  for (const id of ['p3', 'p4']) s.peerHas(id, BLOB, all.filter((p) => p % 2 === 1));

  // c asks for 8: two pieces, then two more while idle parents remain.
  t.is(s.schedule('c', BLOB, { limit: 8 }).length, 4);
  // Every parent has one upload now: d and e get two each (to the cap of two), f none.
  t.is(s.schedule('d', BLOB, { limit: 8 }).length, 2);
  t.is(s.schedule('e', BLOB, { limit: 8 }).length, 2);
  t.deepEqual(s.schedule('f', BLOB, { limit: 8 }), []);
  t.is(s.stats().inflightAssignments, 8);
});

test("a child's fair share counts its assignments in every blob: the layers of one image fetched at once take no more busy parents than one blob", (t) => {
  const s = new Scheduler({ clock: { now: () => 0 }, random: () => 0.5 }, { maxUploadsPerPeer: 2, candidatesPerPiece: 1 });
  const layers = [`sha256:${'a'.repeat(64)}`, `sha256:${'b'.repeat(64)}`, `sha256:${'c'.repeat(64)}`];
  for (const id of ['p1', 'p2', 'c', 'd']) s.addPeer({ peerId: id, url: `http://${id}` });
  for (const layer of layers) {
    s.addBlob(layer, 4);
    // One holder per piece, two per layer: rare, so each parent's every slot may be used.
    s.peerHas('p1', layer, [0, 1]);
    s.peerHas('p2', layer, [2, 3]);
  }
  // c takes two pieces from p1 (its share of busy-able parents), then one from p2 while it
  // is idle; in the other layers it may only take idle parents, and there are none left.
  t.is(s.schedule('c', layers[0] as string, { limit: 4 }).length, 3);
  t.deepEqual(s.schedule('c', layers[1] as string, { limit: 4 }), []);
  t.deepEqual(s.schedule('c', layers[2] as string, { limit: 4 }), []);
  // p2's last slot is d's.
  t.is(s.schedule('d', layers[1] as string, { limit: 4 }).length, 1);
  t.is(s.stats().inflightAssignments, 4);
});

test('in a swarm of LARGE_SWARM_MEMBERS or more, a child gets one busy-able parent fewer than a parent has slots', (t) => {
  const s = new Scheduler({ clock: { now: () => 0 }, random: () => 0.5 }, { maxUploadsPerPeer: 2 });
  s.addBlob(BLOB, 16);
  const all = Array.from({ length: 16 }, (_, i) => i);
  const bystanders = Array.from({ length: LARGE_SWARM_MEMBERS - 4 }, (_, i) => `b${i}`);
  for (const id of ['p1', 'p2', 'p3', 'p4', 'c', 'd', 'e', 'f', 'g', ...bystanders]) s.addPeer({ peerId: id, url: `http://${id}` });
  for (const id of ['p1', 'p2']) s.peerHas(id, BLOB, all.filter((p) => p % 2 === 0));
  for (const id of ['p3', 'p4']) s.peerHas(id, BLOB, all.filter((p) => p % 2 === 1));
  // Members that ask for nothing yet: four holders and these make the swarm large.
  for (const id of bystanders) t.deepEqual(s.schedule(id, BLOB, { limit: 0 }), []);
  t.is(s.members(BLOB), LARGE_SWARM_MEMBERS);

  // c: one busy-able parent (its share), then the three still idle.
  t.is(s.schedule('c', BLOB, { limit: 8 }).length, 4);
  // Every parent has one upload: each further child gets one piece (its share), not two.
  for (const id of ['d', 'e', 'f', 'g']) t.is(s.schedule(id, BLOB, { limit: 8 }).length, 1, id);
  t.is(s.stats().inflightAssignments, 8);
});
