// Regression: parseWire collected every schema error of a bad value before
// keeping the first three. A 64 KiB schedule body holding 8,000 wrong
// `failures` items made 56,000 error objects and blocked the event loop ~0.8 s
// per request.
import test from 'ava';
import { performance } from 'node:perf_hooks';
import { BadRequestError, ScheduleRequestSchema, TaskRequestSchema, parseWire } from '../src/index.js';

test('a body with thousands of wrong items is refused quickly, naming three problems', (t) => {
  const bodies = [
    JSON.parse(`{"peerId":"a","limit":1,"failures":[${Array(8000).fill('{"a":1}').join(',')}]}`) as unknown,
    JSON.parse(`{"peerId":"a","limit":1,"have":[${Array(32000).fill('""').join(',')}]}`) as unknown,
  ];
  for (const body of bodies) {
    const started = performance.now();
    const error = t.throws(() => parseWire(ScheduleRequestSchema, body, 'schedule request'), { instanceOf: BadRequestError });
    const ms = performance.now() - started;
    t.true(ms < 100, `took ${ms.toFixed(1)} ms`);
    t.is(error?.message.split('; ').length, 3);
  }
});

test('a body with a single problem names it', (t) => {
  const error = t.throws(() => parseWire(TaskRequestSchema, { digest: 'x', registry: 'r', repository: 'a' }, 'task request'), { instanceOf: BadRequestError });
  t.regex(error?.message ?? '', /^invalid task request: \/digest /);
});
