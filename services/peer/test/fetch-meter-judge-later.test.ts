// A peer's copy of a piece still arriving at the supernode moves at the registry's pace and
// may send nothing for seconds: such a body is watched but not judged until judge() (the
// supernode's copy matched). Judged from the start, a 3 s pause of one registry fetch cut
// a relay and every relay fed by it (bench:swarm, N=16, 10 layers at 10 Mbit/s).
import { PassThrough } from 'node:stream';
import test from 'ava';
import { FetchMeters, MIN_PARENT_BYTES_PER_SEC, SLOW_PARENT_WINDOW_MS } from '../src/fetch-meter.js';

function setup(): { meters: FetchMeters; advance: (ms: number) => void } {
  let now = 0;
  const meters = new FetchMeters(() => undefined, () => now);
  return { meters, advance: (ms) => (now += ms) };
}

test('a body not yet judged is not cut for sending nothing; from judge() on, it is', (t) => {
  const { meters, advance } = setup();
  const body = new PassThrough();
  body.on('error', () => undefined);
  const handle = meters.watch(body, { judged: false, label: 'relay' });
  advance(SLOW_PARENT_WINDOW_MS * 3);
  meters.check();
  t.is(handle.meter.failure, undefined);
  t.false(body.destroyed);

  handle.judge();
  // Its first window starts at judge(): not cut before that window has passed.
  advance(SLOW_PARENT_WINDOW_MS - 1);
  meters.check();
  t.is(handle.meter.failure, undefined);
  advance(2);
  meters.check();
  t.is(handle.meter.failure?.kind, 'stalled');
  t.true(body.destroyed);
  handle.stop();
  meters.close();
});

test('a judged body that keeps above the floor is kept', (t) => {
  const { meters, advance } = setup();
  const body = new PassThrough();
  const handle = meters.watch(body, { judged: true, label: 'peer' });
  body.resume();
  body.write(Buffer.alloc(Math.ceil((MIN_PARENT_BYTES_PER_SEC * SLOW_PARENT_WINDOW_MS) / 1000) + 1));
  advance(SLOW_PARENT_WINDOW_MS);
  meters.check();
  t.is(handle.meter.failure, undefined);
  handle.stop();
  meters.close();
});
