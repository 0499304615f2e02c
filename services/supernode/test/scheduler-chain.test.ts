/**
 * A blob's swarm of up to chainMembers members is a chain (SchedulerInit):
 * each member takes the pieces in order, a window at a time, from the member
 * before it; the first from the seed. Members that cannot be a parent are
 * passed over; a larger swarm is scheduled rarest first.
 */
import test from 'ava';
import { BUSY_PENALTY_MS, MAX_CHAIN_MEMBERS, Scheduler, type PieceAssignment } from '../src/scheduler/index.js';

const BLOB = `sha256:${'c'.repeat(64)}`;
const PIECES = 8;

/** [piece, candidates] of each assignment. */
const view = (out: PieceAssignment[]): Array<[number, string[]]> => out.map((a) => [a.piece, a.candidates.map((c) => (c.kind === 'peer' ? c.peerId : 'seed'))]);

function swarm(init: { chainMembers: number; chainWindow?: number }, members: readonly string[], clock = { now: () => 1_000 }): Scheduler {
  const s = new Scheduler({ clock, random: () => 0.5 }, init);
  s.addBlob(BLOB, PIECES);
  for (const id of members) s.addPeer({ peerId: id, url: `http://${id}` });
  return s;
}

test('members in the order they joined take the pieces in order from the one before them, the first from the seed', (t) => {
  const s = swarm({ chainMembers: 16 }, ['a', 'b', 'c']);
  // One member alone is not a chain: rarest first (it may take more than the window).
  t.is(s.chainSlot('a', BLOB), undefined, 'not a member yet');
  s.seedHas(BLOB, [0, 1, 2, 3]);
  t.is(s.schedule('a', BLOB, { limit: 1 }).length, 1);
  t.is(s.chainSlot('a', BLOB), undefined, 'a blob with one member has no chain');
  s.reportFailure('a', 'seed', BLOB, 0, 'busy'); // ends a's assignment
  s.peerHas('b', BLOB, []); // b joins
  t.deepEqual(s.chainSlot('a', BLOB), { head: true, room: 2 });
  t.deepEqual(s.chainSlot('b', BLOB), { head: false, room: 2 });

  t.deepEqual(view(s.schedule('b', BLOB, { limit: 4 })), [], 'b waits for what a has coming: nothing yet');

  const later = swarm({ chainMembers: 16 }, ['a', 'b', 'c']);
  later.seedHas(BLOB, [0, 1, 2, 3]);
  later.peerHas('a', BLOB, []);
  later.peerHas('b', BLOB, []);
  later.peerHas('c', BLOB, []);
  t.deepEqual(view(later.schedule('a', BLOB, { limit: 4 })), [[0, ['seed']], [1, ['seed']]], 'the head: two in flight, in order, from the seed');
  t.deepEqual(view(later.schedule('a', BLOB, { limit: 4 })), [], 'its window is full');
  t.deepEqual(view(later.schedule('c', BLOB, { limit: 4 })), [], 'c: b has nothing coming yet');
  t.deepEqual(view(later.schedule('b', BLOB, { limit: 4 })), [[0, ['a']], [1, ['a']]], 'b: what a has been given from the seed (requests ahead), from a alone');
  t.deepEqual(view(later.schedule('c', BLOB, { limit: 4 })), [], "c: b has been given them, but a's copies have not begun: one hop ahead at most");
  later.peerArriving('a', BLOB, [0]);
  t.deepEqual(view(later.schedule('c', BLOB, { limit: 1 })), [[0, ['b']]], "c: from b once a's copy arrives, within its limit");
  later.peerHas('a', BLOB, [0, 1]);
  t.deepEqual(view(later.schedule('a', BLOB, { limit: 4 })), [[2, ['seed']], [3, ['seed']]]);
  t.deepEqual(view(later.schedule('a', BLOB, { limit: 4 })), [], 'piece 4 is not at the seed yet');
  t.deepEqual(view(later.schedule('c', BLOB, { limit: 4 })), [[1, ['b']]], 'c stops at its window');
  later.peerHas('c', BLOB, [0, 1]);
  t.deepEqual(view(later.schedule('c', BLOB, { limit: 4 })), [], 'c never passes b: b has not been given piece 2');
  later.peerHas('b', BLOB, [0, 1]);
  t.deepEqual(view(later.schedule('b', BLOB, { limit: 4 })), [[2, ['a']], [3, ['a']]]);
  t.deepEqual(view(later.schedule('c', BLOB, { limit: 4 })), []);
  later.peerArriving('a', BLOB, [2]);
  t.deepEqual(view(later.schedule('c', BLOB, { limit: 4 })), [[2, ['b']]], "piece 3: a's copy has not begun");
  t.deepEqual(later.chainSlot('c', BLOB), { head: false, room: 1 });
});

test('a member that cannot be a parent for the child is passed over: not serving, penalised by it, quarantined, gone', (t) => {
  let now = 1_000;
  const s = swarm({ chainMembers: 16 }, ['a', 'b', 'c', 'd'], { now: () => now });
  s.seedHas(BLOB, [0, 1, 2, 3, 4, 5, 6, 7]);
  for (const id of ['a', 'b', 'c', 'd']) s.peerHas(id, BLOB, []);
  s.peerHas('a', BLOB, [0, 1, 2, 3, 4, 5]);
  s.peerHas('b', BLOB, [0, 1, 2, 3]);
  s.peerHas('c', BLOB, [0, 1]);
  const first = (child: string): string | undefined => view(s.schedule(child, BLOB, { limit: 1 }))[0]?.[1][0];
  const drop = (child: string): void => {
    for (let p = 0; p < PIECES; p++) s.reportFailure(child, 'nobody', BLOB, p, 'busy');
  };

  t.is(first('d'), 'c');
  drop('d');
  s.reportFailure('d', 'c', BLOB, 2, 'stalled');
  t.is(first('d'), 'b', 'd penalised c: its link is b');
  drop('d');
  t.is(first('c'), 'b', 'c is not penalised by anyone else');
  s.reportFailure('c', 'b', BLOB, 2, 'bad-piece');
  t.is(first('c'), 'a', 'b quarantined: c goes to a');
  drop('d');
  t.is(first('d'), 'a', 'and so does d');
  s.addPeer({ peerId: 'a', url: 'http://a', serves: false });
  drop('d');
  t.is(first('d'), 'seed', 'a not serving: d is a head of its own, fed by the seed');
  now += 30_000;
  s.addPeer({ peerId: 'a', url: 'http://a', serves: true });
  drop('d');
  t.is(first('d'), 'c', 'the penalty over, c is d’s link again');
  s.removePeer('c');
  drop('d');
  t.is(first('d'), 'a', 'c gone; b still quarantined');
});

test('a swarm larger than chainMembers is scheduled rarest first as a whole', (t) => {
  const s = swarm({ chainMembers: 2 }, ['a', 'b', 'c']);
  s.seedHas(BLOB, [0, 1, 2, 3, 4, 5, 6, 7]);
  s.peerHas('a', BLOB, [0, 1, 2, 3]);
  s.peerHas('b', BLOB, []);
  t.deepEqual(s.chainSlot('b', BLOB), { head: false, room: 2 }, 'two members: a chain');
  s.peerHas('c', BLOB, []);
  t.is(s.chainSlot('b', BLOB), undefined, 'three: none');
  t.is(s.chainSlot('c', BLOB), undefined);
  // Rarest first, more than a chain's window: pieces only the seed has (two seed copies per child), then a's.
  t.deepEqual(view(s.schedule('c', BLOB, { limit: 3 })), [
    [4, ['seed']],
    [5, ['seed']],
    [0, ['a', 'seed']],
  ]);
  s.removePeer('c');
  t.deepEqual(view(s.schedule('b', BLOB, { limit: 4 })), [[0, ['a']], [1, ['a']]], 'two again: b takes from its link, a alone');
});

test("a link that answered 'missing' (its copy not there yet) is passed over only briefly", (t) => {
  let now = 1_000;
  const s = swarm({ chainMembers: 16 }, ['a', 'b', 'c'], { now: () => now });
  for (const id of ['a', 'b', 'c']) s.peerHas(id, BLOB, []);
  s.peerHas('a', BLOB, [0, 1, 2, 3]);
  s.peerHas('b', BLOB, [0, 1]);
  t.deepEqual(view(s.schedule('c', BLOB, { limit: 1 })), [[0, ['b']]]);
  s.reportFailure('c', 'b', BLOB, 0, 'missing');
  t.deepEqual(view(s.schedule('c', BLOB, { limit: 1 })), [[0, ['a']]], 'c goes to the member before b');
  s.peerHas('c', BLOB, [0]);
  now += BUSY_PENALTY_MS;
  t.deepEqual(view(s.schedule('c', BLOB, { limit: 1 })), [[1, ['b']]], 'and back to b a moment later');
});

test('chainMembers and chainWindow are checked', (t) => {
  const clock = { now: () => 0 };
  t.throws(() => new Scheduler({ clock }, { chainMembers: -1 }), { instanceOf: RangeError });
  t.throws(() => new Scheduler({ clock }, { chainMembers: 1.5 }), { instanceOf: RangeError });
  t.throws(() => new Scheduler({ clock }, { chainWindow: 0 }), { instanceOf: RangeError });
  t.throws(() => new Scheduler({ clock }, { chainMembers: MAX_CHAIN_MEMBERS + 1 }), { instanceOf: RangeError });
  t.notThrows(() => new Scheduler({ clock }, { chainMembers: MAX_CHAIN_MEMBERS }));
  const off = new Scheduler({ clock }, { chainMembers: 0 });
  off.addBlob(BLOB, PIECES);
  off.addPeer({ peerId: 'a', url: 'http://a' });
  off.addPeer({ peerId: 'b', url: 'http://b' });
  off.peerHas('a', BLOB, []);
  off.peerHas('b', BLOB, []);
  t.is(off.chainSlot('b', BLOB), undefined, 'chains off');
});
