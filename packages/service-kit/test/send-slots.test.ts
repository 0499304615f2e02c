import test from 'ava';
import { SendSlots } from '../src/index.js';

test('sends run a few at a time, the rest in arrival order; a freed slot goes to the next in line', async (t) => {
  const slots = new SendSlots(2, 10);
  const never = new AbortController().signal;
  const a = await slots.acquire(never);
  const b = await slots.acquire(never);
  const order: string[] = [];
  const c = slots.acquire(never).then((release) => (order.push('c'), release));
  const d = slots.acquire(never).then((release) => (order.push('d'), release));
  t.deepEqual(slots.load, { running: 2, waiting: 2 });
  a?.();
  a?.(); // a second release of the same slot frees nothing more
  const releaseC = await c;
  t.deepEqual(order, ['c']);
  t.deepEqual(slots.load, { running: 2, waiting: 1 });
  b?.();
  await d;
  t.deepEqual(order, ['c', 'd']);
  releaseC?.();
  t.deepEqual(slots.load, { running: 1, waiting: 0 });
});

test('a waiter that gives up leaves the line; a full line answers busy at once', async (t) => {
  const slots = new SendSlots(1, 1);
  const never = new AbortController().signal;
  const held = await slots.acquire(never);
  const gone = new AbortController();
  const waiting = slots.acquire(gone.signal);
  t.is(await slots.acquire(never), undefined, 'the line is full');
  gone.abort(new Error('child went away'));
  await t.throwsAsync(waiting, { message: 'child went away' });
  t.deepEqual(slots.load, { running: 1, waiting: 0 });
  held?.();
  t.deepEqual(slots.load, { running: 0, waiting: 0 });
});
