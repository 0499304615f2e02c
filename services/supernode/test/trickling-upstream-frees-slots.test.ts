// Regression: an upstream that sends one byte every 2 s, asked for 20 digests,
// held all 16 back-to-source slots (every byte reset the "no byte for N s"
// timers): new blobs from a healthy registry then waited behind it and came
// from the registry through each node's own fallback. Now one registry can
// hold at most a quarter of the slots, and a fetch under the minimum rate is cut
// (after one try on a new connection).
import { join } from 'node:path';
import test from 'ava';
import { digestOf, type Digest } from '@shoal/core';
import { buildImage, makeTempDir, pushImage, removeTempDir, requireTools, startRegistry } from '@shoal/testkit';
import { blobTasksFor, startTricklingRegistry } from './helpers/trickling-registry.js';

const MiB = 1024 * 1024;

test('20 trickling back-to-source fetches leave slots for a healthy registry, and are cut for want of progress', async (t) => {
  await requireTools(['docker-registry', 'skopeo']);
  const trickle = await startTricklingRegistry({ byteEveryMs: 2_000 });
  t.teardown(() => trickle.close());
  const work = await makeTempDir('shoal-trickle');
  t.teardown(() => removeTempDir(work));
  const healthy = await startRegistry({});
  t.teardown(() => healthy.stop());
  const image = await buildImage({ dir: join(work, 'layout'), tag: 'v1', layers: [{ sizeBytes: 2 * MiB, seed: 'trickle-healthy' }] });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: healthy.host, repository: 'app/healthy' });
  const layer = image.layers[0];
  if (layer === undefined) throw new Error('setup');

  // The defaults (16 slots, 4 per registry), with the progress window shortened so the test is quick.
  const { tasks, store } = await blobTasksFor(t, [trickle.host, healthy.host], { fetchProgressWindowMs: 2_000 });

  const trickled: Digest[] = Array.from({ length: 20 }, (_, i) => digestOf(`trickled blob ${i}`));
  const starts = trickled.map((digest) => tasks.ensure({ digest, registry: trickle.host, repository: 'app/slow' }, undefined).catch(() => undefined));
  // Let the trickling fetches take what they can.
  await Promise.race([Promise.all(starts), new Promise((r) => setTimeout(r, 500))]);

  const startedAt = performance.now();
  const info = await tasks.ensure({ digest: layer.digest, registry: healthy.host, repository: 'app/healthy', sizeBytes: layer.sizeBytes }, undefined);
  const startSeconds = (performance.now() - startedAt) / 1000;
  t.is(info.sizeBytes, layer.sizeBytes);
  t.true(startSeconds < 2, `the healthy registry's blob started after ${startSeconds.toFixed(1)} s`);
  await store.waitForComplete(layer.digest, { signal: AbortSignal.timeout(10_000) });

  // The trickling fetches do not hold their slots: each is cut within three windows
  // (one to be judged, one more on the new connection it is given once), four at a time.
  const cutBy = performance.now() + 40_000;
  while (tasks.inflightCount > 0 && performance.now() < cutBy) await new Promise((r) => setTimeout(r, 200));
  t.is(tasks.inflightCount, 0, 'every trickling fetch was cut');
});
