/**
 * Regression: a download with nothing to fetch asked its supernode again every
 * 20–100 ms, for each blob; at N=16 that was 500 schedule calls per node for
 * one 64 MiB pull, a node agent's largest CPU cost and 800 answers a second
 * for the supernode, and a piece that became available waited for the next
 * poll. Now an empty answer is held (waitMs) and given as soon as something
 * can be assigned.
 */
import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { request } from 'undici';
import { API_PREFIX } from '@shoal/core';
import { digestOf, startSupernode } from './helpers/fixture.js';
import type { SupernodeInit } from '../src/index.js';

const PIECE = 1024 * 1024;

async function post(url: string, body: object): Promise<{ status: number; json: { assignments: Array<{ piece: number; candidates: Array<{ kind: string; peerId?: string }> }> } }> {
  const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.statusCode, json: (await res.body.json()) as never };
}

/** A supernode whose cache holds a blob of `pieces` pieces (fetched through a task call): the blob's schedule URL. */
async function cachedBlobSchedule(t: ExecutionContext, pieces: number, init: Partial<SupernodeInit> = {}): Promise<string> {
  const blob = randomBytes(pieces * PIECE);
  const digest = digestOf(blob);
  const supernode = await startSupernode({ blobs: [blob], init });
  t.teardown(() => supernode.close());
  const task = await request(`${supernode.url}${API_PREFIX}/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ digest, registry: 'registry.example', repository: 'team/app' }),
  });
  t.is(task.statusCode, 200);
  await task.body.dump();
  await supernode.store.waitForComplete(digest, { signal: AbortSignal.timeout(10_000) });
  return `${supernode.url}${API_PREFIX}/blobs/${digest}/schedule`;
}

test('an empty schedule answer is held until a piece can be assigned, then given at once', async (t) => {
  // Rarest first, the default (a chain's members: below).
  const schedule = await cachedBlobSchedule(t, 2);
  const peer = (id: string): object => ({ peerId: id, advertiseUrl: 'http://127.0.0.1:1' });

  // a takes both pieces from the seed; b, with nothing it may fetch (each is on its way to a), waits.
  const first = await post(schedule, { ...peer('node-a'), limit: 2 });
  t.deepEqual(first.json.assignments.map((x) => x.piece).sort(), [0, 1]);

  const askedAt = performance.now();
  const empty = await post(schedule, { ...peer('node-b'), limit: 1, waitMs: 400 });
  const heldMs = performance.now() - askedAt;
  t.deepEqual(empty.json.assignments, []);
  t.true(heldMs >= 350, `an empty answer came after ${Math.round(heldMs)} ms, not held`);

  const held = post(schedule, { ...peer('node-b'), limit: 1, waitMs: 4_000 });
  await new Promise((r) => setTimeout(r, 300));
  const announcedAt = performance.now();
  await post(schedule, { ...peer('node-a'), limit: 0, have: [0] });
  const answer = await held;
  const afterMs = performance.now() - announcedAt;
  t.deepEqual(
    answer.json.assignments.map((x) => [x.piece, x.candidates[0]?.peerId ?? x.candidates[0]?.kind]),
    [[0, 'node-a']],
  );
  t.true(afterMs < 1_000, `the held answer came ${Math.round(afterMs)} ms after a had the piece`);
});

test("a chain member's empty answer is held until its link has the next piece coming, then given at once", async (t) => {
  const schedule = await cachedBlobSchedule(t, 3, { scheduler: { chainMembers: 16 } });
  const peer = (id: string): object => ({ peerId: id, advertiseUrl: 'http://127.0.0.1:1' });
  const pieces = (answer: Awaited<ReturnType<typeof post>>): unknown[] => answer.json.assignments.map((x) => [x.piece, x.candidates.map((c) => c.peerId ?? c.kind)]);

  // a, the chain's head, takes two pieces from the seed; b, the next member, takes the same two from a
  // while they are on their way there (requests ahead).
  t.deepEqual(pieces(await post(schedule, { ...peer('node-a'), limit: 4 })), [[0, ['seed']], [1, ['seed']]]);
  t.deepEqual(pieces(await post(schedule, { ...peer('node-b'), limit: 4 })), [[0, ['node-a']], [1, ['node-a']]]);

  // b's window is full: its call is held. Neither a's progress nor b's own frees it a piece a has not got coming...
  const held = post(schedule, { ...peer('node-b'), limit: 4, waitMs: 4_000 });
  await new Promise((r) => setTimeout(r, 200));
  await post(schedule, { ...peer('node-b'), limit: 0, have: [0] });
  await new Promise((r) => setTimeout(r, 200));
  // ...until a is given piece 2: then b's held call answers at once, from a.
  const assignedAt = performance.now();
  t.deepEqual(pieces(await post(schedule, { ...peer('node-a'), limit: 4, have: [0, 1] })), [[2, ['seed']]]);
  const answer = await held;
  const afterMs = performance.now() - assignedAt;
  t.deepEqual(pieces(answer), [[2, ['node-a']]]);
  t.true(afterMs < 1_000, `the held answer came ${Math.round(afterMs)} ms after a was given the piece`);
});
