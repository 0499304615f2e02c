// An image's config (or any blob of at most SMALL_BLOB_BYTES, by the size the
// node's HEAD gave) does not wait for one of its registry's fetch slots: behind
// four layers' fetches from the same registry it waited 4–9 s in bench:swarm.
// Larger blobs, and blobs of unknown size, still wait their turn.
import test from 'ava';
import { digestOf, type Digest } from '@shoal/core';
import { SMALL_BLOB_BYTES } from '../src/blob-tasks.js';
import { blobTasksFor, startTricklingRegistry } from './helpers/trickling-registry.js';

const MiB = 1024 * 1024;

test('a small blob starts at once while its registry’s only fetch slot is taken; a larger one, or one of unknown size, waits', async (t) => {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const configDigest = digestOf(config);
  const unsized = Buffer.alloc(2048, 7);
  const unsizedDigest = digestOf(unsized);
  const registry = await startTricklingRegistry({ byteEveryMs: 200, quick: new Map([[configDigest, config], [unsizedDigest, unsized]]) });
  t.teardown(() => registry.close());
  const { tasks, store } = await blobTasksFor(t, [registry.host], { maxConcurrentFetches: 4, maxFetchesPerRegistry: 1 });
  const repository = 'app/small';

  // A layer's fetch takes the registry's one slot and keeps it.
  await tasks.ensure({ digest: digestOf('the slow layer'), registry: registry.host, repository, sizeBytes: 4 * MiB }, undefined);

  const startedAt = performance.now();
  const info = await tasks.ensure({ digest: configDigest, registry: registry.host, repository, sizeBytes: config.length }, undefined);
  const startMs = performance.now() - startedAt;
  t.is(info.sizeBytes, config.length);
  t.true(startMs < 1_000, `the config's fetch began after ${startMs.toFixed(0)} ms`);
  await store.waitForComplete(configDigest, { signal: AbortSignal.timeout(5_000) });

  // Past the bound, or with no size told, a blob waits for the slot as before.
  const waited = async (digest: Digest, sizeBytes: number | undefined): Promise<boolean> => {
    const start = tasks.ensure({ digest, registry: registry.host, repository, ...(sizeBytes === undefined ? {} : { sizeBytes }) }, undefined);
    start.catch(() => undefined);
    const outcome = await Promise.race([start.then(() => 'started'), new Promise((resolve) => setTimeout(() => resolve('waiting'), 800))]);
    return outcome === 'waiting';
  };
  t.true(await waited(digestOf('another layer'), SMALL_BLOB_BYTES + 1), 'a blob one byte over the bound waits');
  t.true(await waited(unsizedDigest, undefined), 'a blob of unknown size waits');
});
