/**
 * A back-to-source fetch goes on from where it was on a new connection (a ranged GET)
 * when its connection breaks, or when the registry's other fetches starve it of the
 * link: the bytes already in are kept, the blob completes and matches its digest, and
 * the registry sends each byte about once. Real docker-registry behind a TCP relay
 * that breaks the connections it is told to.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { silentLogger, type Digest } from '@shoal/core';
import { RegistryClient } from '@shoal/registry-client';
import { PieceStore } from '@shoal/store';
import { buildImage, makeTempDir, pushImage, removeTempDir, requireTools, startRegistry, type BuiltLayer, type RunningRegistry } from '@shoal/testkit';
import { BlobTasks } from '../src/blob-tasks.js';
import { startFaultRelay, type RelayFault } from './helpers/fault-relay.js';

const MiB = 1024 * 1024;
const REPOSITORY = 'app/resume';

async function registryWith(t: ExecutionContext, layerMiB: number[]): Promise<{ registry: RunningRegistry; layers: BuiltLayer[] }> {
  await requireTools(['docker-registry', 'skopeo']);
  const work = await makeTempDir('shoal-resume');
  t.teardown(() => removeTempDir(work));
  const registry = await startRegistry({});
  t.teardown(() => registry.stop());
  const image = await buildImage({ dir: join(work, 'layout'), tag: 'v1', layers: layerMiB.map((mib, i) => ({ sizeBytes: mib * MiB, seed: `resume-${t.title}-${i}` })) });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: REPOSITORY });
  return { registry, layers: image.layers };
}

async function tasksVia(t: ExecutionContext, host: string, init: ConstructorParameters<typeof BlobTasks>[1] = {}): Promise<{ tasks: BlobTasks; store: PieceStore; resumes: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-supernode-resume-'));
  const store = await PieceStore.open({ log: silentLogger() }, { dir });
  t.teardown(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: [host], maxRetries: 0 });
  t.teardown(() => client.close());
  const tasks = new BlobTasks({ log: silentLogger(), store, registry: client }, init);
  t.teardown(() => tasks.close());
  const resumes: string[] = [];
  tasks.onFetchResumed = (cause) => resumes.push(cause);
  return { tasks, store, resumes };
}

const rangeOf = (head: string): string | undefined => /^range: *(.*)$/im.exec(head)?.[1]?.trim();

test('a connection reset halfway through a blob: the fetch goes on with Range from where it was, and the blob completes', async (t) => {
  const { registry, layers } = await registryWith(t, [8]);
  const layer = layers[0] as BuiltLayer;
  // The first connection is reset after 3 MiB of its answer; the rest pass.
  const relay = await startFaultRelay(registry.port, (_head, index): RelayFault => (index === 0 ? { kind: 'cut', afterBytes: 3 * MiB } : { kind: 'pass' }));
  t.teardown(() => relay.close());
  const { tasks, store, resumes } = await tasksVia(t, relay.host);

  await tasks.ensure({ digest: layer.digest, registry: relay.host, repository: REPOSITORY, sizeBytes: layer.sizeBytes }, undefined);
  await store.waitForComplete(layer.digest, { signal: AbortSignal.timeout(20_000) });
  t.true(store.get(layer.digest)?.complete, 'complete: every piece and the whole blob matched');
  t.deepEqual(resumes, ['broken']);
  t.is(relay.heads.length, 2);
  const range = rangeOf(relay.heads[1] as string);
  t.regex(range ?? '', /^bytes=\d+-$/, `the second request: ${relay.heads[1]}`);
  const offset = Number(/\d+/.exec(range ?? '')?.[0]);
  t.true(offset > 2 * MiB && offset <= 3 * MiB, `resumed from ${offset}`);
  t.true(relay.forwardedBytes() < layer.sizeBytes + MiB, `the registry sent ${relay.forwardedBytes()} bytes for a ${layer.sizeBytes}-byte blob`);
  const answers = (await registry.requests()).filter((r) => r.digest === layer.digest).map((r) => r.status);
  t.true(answers.includes(206), `registry answers: ${answers.join(', ')}`);
});

test('a fetch the registry\'s other fetches starve is moved to a new connection and completes while they still run', async (t) => {
  const { registry, layers } = await registryWith(t, [6, 6, 6]);
  const starvedLayer = layers[0] as BuiltLayer;
  // The first blob's first connection goes silent after 256 KiB and stays open; the
  // others (and any ranged request) pass, at 1 MiB/s each, so they run for about 6 s.
  const relay = await startFaultRelay(
    registry.port,
    (head): RelayFault => (head.includes(starvedLayer.digest) && rangeOf(head) === undefined ? { kind: 'stall', afterBytes: 256 * 1024 } : { kind: 'pass' }),
    MiB,
  );
  t.teardown(() => relay.close());
  const { tasks, store, resumes } = await tasksVia(t, relay.host, { starved: { windowMs: 2_000 } });

  const startedAt = performance.now();
  for (const layer of layers) await tasks.ensure({ digest: layer.digest, registry: relay.host, repository: REPOSITORY, sizeBytes: layer.sizeBytes }, undefined);
  await store.waitForComplete(starvedLayer.digest, { signal: AbortSignal.timeout(30_000) });
  const starvedSeconds = (performance.now() - startedAt) / 1000;
  for (const layer of layers.slice(1)) await store.waitForComplete(layer.digest as Digest, { signal: AbortSignal.timeout(30_000) });
  t.true(store.get(starvedLayer.digest)?.complete);
  t.deepEqual(resumes, ['starved']);
  // 3 s to be judged (a 2 s window), then 5.75 MiB at 1 MiB/s.
  t.true(starvedSeconds < 12, `the starved blob completed after ${starvedSeconds.toFixed(1)} s`);
  t.true(relay.heads.some((head) => head.includes(starvedLayer.digest) && rangeOf(head) !== undefined), 'a ranged request for the starved blob');
});
