// A request held for a piece still arriving from the registry used to end after
// PIECE_WAIT_MS whatever the fetch was doing. A fetch the registry's link starves is slow,
// not dead: in bench:swarm (20 layers, 10 Mbit/s) three layers took a minute, fifteen
// nodes' requests for their first pieces ran out together, and the supernode then sent
// 1.76 × S. The piece arriving now is held for as long as bytes keep coming.
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import type { Digest } from '@shoal/core';
import { holdWhileFetching } from '../src/piece-hold.js';

const DIGEST = `sha256:${'a'.repeat(64)}` as Digest;
const WAIT_MS = 150;

/** A fetch whose last byte came `quietMs()` ago (undefined: not being fetched), with pieces [0, landed) in the store. */
function fetchState(quietMs: () => number | undefined, landed: number): [{ fetchQuietMs: () => number | undefined }, { hasPiece: (d: Digest, i: number) => boolean }] {
  return [{ fetchQuietMs: quietMs }, { hasPiece: (_d, i) => i < landed }];
}

test('the piece arriving now is held past the wait while bytes keep coming', async (t) => {
  const [tasks, store] = fetchState(() => 10, 2);
  const hold = holdWhileFetching(tasks, store, DIGEST, 2, WAIT_MS);
  await sleep(WAIT_MS * 3);
  t.false(hold.signal.aborted);
  hold.clear();
});

test('it ends once no byte came for the wait, or the fetch is over', async (t) => {
  let quiet: number | undefined = 10;
  const [tasks, store] = fetchState(() => quiet, 0);
  const hold = holdWhileFetching(tasks, store, DIGEST, 0, WAIT_MS);
  await sleep(WAIT_MS * 2);
  t.false(hold.signal.aborted);
  quiet = WAIT_MS;
  await sleep(WAIT_MS * 1.5);
  t.true(hold.signal.aborted);
  t.is((hold.signal.reason as Error).name, 'TimeoutError');

  const [gone, store2] = fetchState(() => undefined, 0);
  const ended = holdWhileFetching(gone, store2, DIGEST, 0, WAIT_MS);
  await sleep(WAIT_MS * 1.5);
  t.true(ended.signal.aborted);
});

test('a piece further ahead keeps the plain wait: its child may find it at a peer first', async (t) => {
  const [tasks, store] = fetchState(() => 10, 1);
  const hold = holdWhileFetching(tasks, store, DIGEST, 3, WAIT_MS);
  await sleep(WAIT_MS * 1.5);
  t.true(hold.signal.aborted);
});
