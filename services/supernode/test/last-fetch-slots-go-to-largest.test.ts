// A registry's last fetch slots go to the largest blobs asked for within
// LAST_SLOTS_GATHER_MS, not to whoever asked first: a pull asks for its layers
// in an order that is chance, and a large layer left waiting for a slot ends
// the pull late.
import test from 'ava';
import { digestOf, type Digest } from '@shoal/core';
import { LAST_SLOTS_GATHER_MS, LAST_SLOTS_GATHERED } from '../src/blob-tasks.js';
import { blobTasksFor, startTricklingRegistry } from './helpers/trickling-registry.js';

const MiB = 1024 * 1024;

async function fetchOrder(t: import('ava').ExecutionContext, slots: number, sizesMiB: readonly number[]): Promise<{ order: number[]; atMs: number[] }> {
  const layers = sizesMiB.map((size, i) => ({ digest: digestOf(`layer ${i} of ${size} MiB`), size }));
  const order: number[] = [];
  const atMs: number[] = [];
  const startedAt = performance.now();
  const registry = await startTricklingRegistry({
    byteEveryMs: 100,
    onGet: (digest: Digest) => {
      order.push(layers.findIndex((l) => l.digest === digest));
      atMs.push(performance.now() - startedAt);
    },
  });
  t.teardown(() => registry.close());
  const { tasks } = await blobTasksFor(t, [registry.host], { maxConcurrentFetches: 16, maxFetchesPerRegistry: slots });
  // Asked for one after another, as a pull's layers are: the fetches that start keep their slots (the registry trickles).
  for (const layer of layers) void tasks.ensure({ digest: layer.digest, registry: registry.host, repository: 'app/layers', sizeBytes: layer.size * MiB }, undefined).catch(() => undefined);
  await new Promise((resolve) => setTimeout(resolve, LAST_SLOTS_GATHER_MS + 700));
  return { order, atMs };
}

test('the smallest layers asked for last wait for a slot, not the largest', async (t) => {
  t.is(LAST_SLOTS_GATHERED, 2);
  // The 32 MiB layer is asked for last: first come, first served, it would be the one left waiting.
  const { order, atMs } = await fetchOrder(t, 4, [4, 4, 8, 16, 32]);
  t.deepEqual(order.slice(0, 2).sort(), [0, 1], 'the first two slots are taken at once');
  t.deepEqual(order.slice(2), [4, 3], 'the last two go to the 32 and 16 MiB layers; the 8 MiB one waits');
  t.true((atMs[0] ?? Infinity) < LAST_SLOTS_GATHER_MS / 2, `first GET at ${atMs[0]?.toFixed(0)} ms`);
  t.true((atMs[2] ?? 0) >= LAST_SLOTS_GATHER_MS * 0.8, `third GET at ${atMs[2]?.toFixed(0)} ms, after the gathering`);
});

test('a registry with no more slots than are gathered for starts each blob at once', async (t) => {
  const { order, atMs } = await fetchOrder(t, LAST_SLOTS_GATHERED, [4, 32, 16]);
  t.deepEqual(order, [0, 1]);
  t.true(atMs.every((ms) => ms < LAST_SLOTS_GATHER_MS / 2), JSON.stringify(atMs));
});
