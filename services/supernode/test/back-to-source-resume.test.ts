/**
 * A back-to-source fetch goes on from where it was on a new connection (a ranged GET)
 * when its connection breaks or goes silent: the bytes already in are kept, the blob completes and matches its digest, and
 * the registry sends each byte about once. Real docker-registry behind a TCP relay
 * that breaks the connections it is told to.
 */
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { silentLogger } from '@shoal/core';
import { RegistryClient } from '@shoal/registry-client';
import { PieceStore } from '@shoal/store';
import { buildImage, makeTempDir, pushImage, removeTempDir, requireTools, startRegistry, type BuiltLayer, type RunningRegistry } from '@shoal/testkit';
import { BlobTasks } from '../src/blob-tasks.js';
import { startFaultRelay, type RelayFault } from './helpers/fault-relay.js';
import { tempStore } from './helpers/temp-store.js';

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

async function tasksVia(t: ExecutionContext, host: string, init: ConstructorParameters<typeof BlobTasks>[1] = {}): Promise<{ tasks: BlobTasks; store: PieceStore; resumes: () => number }> {
  const store = await tempStore(t, 'supernode-resume');
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: [host], maxRetries: 0 });
  t.teardown(() => client.close());
  const tasks = new BlobTasks({ log: silentLogger(), store, registry: client }, init);
  t.teardown(() => tasks.close());
  let resumed = 0;
  tasks.onFetchResumed = () => resumed++;
  return { tasks, store, resumes: () => resumed };
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
  t.is(resumes(), 1);
  t.is(relay.heads.length, 2);
  const range = rangeOf(relay.heads[1] as string);
  t.regex(range ?? '', /^bytes=\d+-$/, `the second request: ${relay.heads[1]}`);
  const offset = Number(/\d+/.exec(range ?? '')?.[0]);
  // A reset drops what the supernode's kernel held unread: it goes on from what it had read.
  t.true(offset > 0 && offset <= 3 * MiB, `resumed from ${offset}`);
  t.true(relay.forwardedBytes() <= layer.sizeBytes + 3 * MiB, `the registry sent ${relay.forwardedBytes()} bytes for a ${layer.sizeBytes}-byte blob`);
  const answers = (await registry.requests()).filter((r) => r.digest === layer.digest).map((r) => r.status);
  t.true(answers.includes(206), `registry answers: ${answers.join(', ')}`);
});

test('a connection that goes silent mid-blob: after one progress window the fetch goes on on a new connection', async (t) => {
  const { registry, layers } = await registryWith(t, [6]);
  const layer = layers[0] as BuiltLayer;
  // The first connection sends 1 MiB of its answer, then nothing, and stays open (a lost NAT mapping).
  const relay = await startFaultRelay(registry.port, (_head, index): RelayFault => (index === 0 ? { kind: 'stall', afterBytes: MiB } : { kind: 'pass' }));
  t.teardown(() => relay.close());
  const { tasks, store, resumes } = await tasksVia(t, relay.host, { fetchProgressWindowMs: 2_000 });

  const startedAt = performance.now();
  await tasks.ensure({ digest: layer.digest, registry: relay.host, repository: REPOSITORY, sizeBytes: layer.sizeBytes }, undefined);
  await store.waitForComplete(layer.digest, { signal: AbortSignal.timeout(20_000) });
  const seconds = (performance.now() - startedAt) / 1000;
  t.true(store.get(layer.digest)?.complete);
  t.is(resumes(), 1);
  // Its first 2 s window has the 1 MiB, the second nothing: a new connection at about 4 s.
  t.true(seconds < 8, `completed after ${seconds.toFixed(1)} s`);
  t.regex(rangeOf(relay.heads[1] ?? '') ?? '', /^bytes=\d+-$/);
});
