import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import test from 'ava';
import { withDeadline } from '../src/index.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const abortedWithin = (signal: AbortSignal, ms: number): Promise<unknown> =>
  new Promise((resolve) => {
    const timer = setTimeout(() => resolve('never'), ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve(signal.reason);
    });
  });

test('the deadline fires even when garbage is collected while it waits', async (t) => {
  const outer = new AbortController();
  const { signal, clear } = withDeadline(outer.signal, 100);
  t.teardown(clear);
  setTimeout(gc, 20);
  setTimeout(gc, 60);
  const reason = await abortedWithin(signal, 2_000);
  t.is((reason as DOMException).name, 'TimeoutError');
  t.false(outer.signal.aborted);
});

test('the outer signal aborts it at once, and a cleared deadline never fires', async (t) => {
  const outer = new AbortController();
  const first = withDeadline(outer.signal, 10_000);
  outer.abort(new Error('shutting down'));
  t.true(first.signal.aborted);
  t.is((first.signal.reason as Error).message, 'shutting down');
  first.clear();

  const second = withDeadline(undefined, 50);
  second.clear();
  t.is(await abortedWithin(second.signal, 200), 'never');
});
