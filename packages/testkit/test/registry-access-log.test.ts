// bench:swarm reads docker-registry's access log for who fetched which blob, how many
// bytes went out, and when: a whole GET (200) and a ranged one (206, a resumed fetch).
import test from 'ava';
import { buildImage, goDurationMs, makeTempDir, pushImage, removeTempDir, requireTools, startRegistry, type RegistryRequest } from '../src/index.js';

test('the access log gives each blob GET its status, bytes, client, end time and duration', async (t) => {
  await requireTools(['docker-registry', 'skopeo']);
  const dir = await makeTempDir('registry-access-log-test');
  t.teardown(() => removeTempDir(dir));
  const registry = await startRegistry();
  t.teardown(() => registry.stop());
  const image = await buildImage({ dir, tag: 'v1', layers: [{ sizeBytes: 1024 * 1024, seed: 'access-log' }] });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: 'test/app' });
  const layer = image.layers[0];
  if (layer === undefined) throw new Error('no layer');
  const url = `${registry.url}/v2/test/app/blobs/${layer.digest}`;

  const before = Date.now();
  const whole = await fetch(url);
  t.is(whole.status, 200);
  await whole.arrayBuffer();
  const ranged = await fetch(url, { headers: { range: 'bytes=1000-' } });
  t.is(ranged.status, 206);
  await ranged.arrayBuffer();
  const after = Date.now();

  // The log line is written once the response completes; give it a moment.
  let gets: RegistryRequest[] = [];
  for (let i = 0; i < 40 && gets.length < 2; i++) {
    gets = (await registry.requests()).filter((r) => r.method === 'GET' && r.digest === layer.digest);
    if (gets.length < 2) await new Promise((r) => setTimeout(r, 50));
  }
  t.deepEqual(
    gets.map((r) => [r.status, r.writtenBytes, r.remoteAddr]),
    [
      [200, layer.sizeBytes, '127.0.0.1'],
      [206, layer.sizeBytes - 1000, '127.0.0.1'],
    ],
  );
  for (const r of gets) {
    const endedAt = Date.parse(r.time ?? '');
    t.true(endedAt >= before - 1000 && endedAt <= after + 1000, `${r.time} within the requests`);
    t.true(r.durationMs !== undefined && r.durationMs >= 0 && r.durationMs < after - before + 1000, `duration ${String(r.durationMs)} ms`);
  }
});

test('goDurationMs reads the durations docker-registry logs, and refuses anything else', (t) => {
  t.is(goDurationMs('22.32609187s'), 22_326.09187);
  t.is(goDurationMs('412.5ms'), 412.5);
  t.is(goDurationMs('1m2.5s'), 62_500);
  t.is(goDurationMs('1h0m0s'), 3_600_000);
  t.is(goDurationMs('85µs'), 0.085);
  t.is(goDurationMs('250ns'), 0.00025);
  for (const text of ['', '12', 's', '1.5 s', '3d', '2s and more']) t.true(Number.isNaN(goDurationMs(text)), text);
});
