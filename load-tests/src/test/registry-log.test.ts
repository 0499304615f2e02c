// bench:swarm times the registry's part of a pull from its access log: each blob GET's
// `time` (when the response completed) less its `http.response.duration`, a Go duration.
import test from 'ava';
import { goDurationMs } from '../netns/services.js';

test('goDurationMs reads the durations docker-registry logs', (t) => {
  t.is(goDurationMs('22.32609187s'), 22_326.09187);
  t.is(goDurationMs('412.5ms'), 412.5);
  t.is(goDurationMs('1m2.5s'), 62_500);
  t.is(goDurationMs('1h0m0s'), 3_600_000);
  t.is(goDurationMs('85µs'), 0.085);
  t.is(goDurationMs('250ns'), 0.00025);
});

test('goDurationMs refuses what is not a duration', (t) => {
  for (const text of ['', '12', 's', '1.5 s', '3d', '2s and more']) t.true(Number.isNaN(goDurationMs(text)), text);
});
