/**
 * Preheat jobs warm the cache through the same BlobTasks peers use, a few
 * blobs at a time, report each blob's failure, and are bounded in memory.
 * Real PieceStore and BlobTasks in a temp dir, a FAKE registry client whose
 * blob bodies can be held back to make downloads overlap.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { Value } from '@sinclair/typebox/value';
import { digestOf, MAX_BLOB_SIZE_BYTES, MediaType, parseImageReference, PreheatJobSchema, silentLogger, type Digest, type PreheatJob } from '@shoal/core';
import type { BlobFetchOptions, RegistryClientApi, RegistryRequest, RegistryResponse } from '@shoal/registry-client';
import { PieceStore } from '@shoal/store';
import { BlobTasks } from '../src/blob-tasks.js';
import { PreheatJobs, type PreheatInit } from '../src/preheat.js';
import { PreheatBusyError, PreheatJobUnknownError } from '../src/errors.js';

const REGISTRY = 'registry.test';

class Gate {
  private opened = false;
  private waiters: Array<() => void> = [];
  wait(): Promise<void> {
    return this.opened ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
  open(): void {
    this.opened = true;
    for (const w of this.waiters.splice(0)) w();
  }
}

/** A FAKE registry: single-manifest images by repository; blobs of `gated` repositories wait for the gate. */
class FakeRegistry implements RegistryClientApi {
  readonly manifests = new Map<string, Buffer>();
  readonly blobs = new Map<Digest, Buffer>();
  readonly gets = new Map<Digest, number>();
  readonly gated = new Set<string>();
  readonly gate = new Gate();
  open = 0;
  maxOpen = 0;

  /** test/<name>:v1 with a config and these layers; `missing` layers are listed but not held. */
  addImage(repository: string, layerSizes: readonly number[], missing = 0): Digest[] {
    const config = Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64', repository }));
    const layers = layerSizes.map((size) => randomBytes(size));
    const absent = Array.from({ length: missing }, () => randomBytes(100));
    for (const b of [config, ...layers]) this.blobs.set(digestOf(b), b);
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: digestOf(config), size: config.length },
      layers: [...layers, ...absent].map((l) => ({ mediaType: MediaType.ociLayerGzip, digest: digestOf(l), size: l.length })),
    };
    this.manifests.set(`/v2/${repository}/manifests/v1`, Buffer.from(JSON.stringify(manifest)));
    return [config, ...layers, ...absent].map((b) => digestOf(b));
  }

  baseUrl(registry: string): string {
    return `https://${registry}`;
  }

  async request(r: RegistryRequest): Promise<RegistryResponse> {
    const body = this.manifests.get(r.path);
    if (body === undefined) return { statusCode: 404, headers: {}, body: Readable.from([]) };
    return { statusCode: 200, headers: { 'content-type': MediaType.ociManifest }, body: Readable.from([body]) };
  }

  async getBlob(o: BlobFetchOptions): Promise<RegistryResponse> {
    this.gets.set(o.digest, (this.gets.get(o.digest) ?? 0) + 1);
    const content = this.blobs.get(o.digest);
    if (content === undefined) return { statusCode: 404, headers: {}, body: Readable.from([]) };
    const gate = this.gated.has(o.repository) ? this.gate : undefined;
    this.open++;
    this.maxOpen = Math.max(this.maxOpen, this.open);
    const body = Readable.from(
      (async function* () {
        await gate?.wait();
        yield content;
      })(),
    );
    body.once('close', () => this.open--);
    return { statusCode: 200, headers: { 'content-length': String(content.length) }, body };
  }

  async headBlob(o: BlobFetchOptions): Promise<RegistryResponse> {
    const content = this.blobs.get(o.digest);
    return { statusCode: content === undefined ? 404 : 200, headers: { 'content-length': String(content?.length ?? 0) }, body: Readable.from([]) };
  }

  async close(): Promise<void> {}
}

async function setUp(t: ExecutionContext, init: PreheatInit = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-preheat-jobs-'));
  const log = silentLogger();
  const store = await PieceStore.open({ log }, { dir });
  const registry = new FakeRegistry();
  const tasks = new BlobTasks({ log, store, registry });
  const jobs = new PreheatJobs({ log, store, registry, tasks }, init);
  t.teardown(async () => {
    registry.gate.open();
    jobs.close();
    tasks.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const start = (repository: string): Promise<PreheatJob> => {
    const imageText = `${REGISTRY}/${repository}:v1`;
    return jobs.start({ imageText, image: parseImageReference(imageText), platforms: undefined }, undefined);
  };
  const finished = async (id: string): Promise<PreheatJob> => {
    for (;;) {
      const job = jobs.get(id);
      if (job.state !== 'running') return job;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  const until = async (condition: () => boolean): Promise<void> => {
    for (let i = 0; i < 500 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    if (!condition()) throw new Error('condition not reached in 5 s');
  };
  return { store, registry, tasks, jobs, start, finished, until };
}

test('a blob preheated and asked for by a peer at the same time is fetched from the registry once', async (t) => {
  const { store, registry, tasks, start, finished, until } = await setUp(t);
  registry.gated.add('test/app');
  const digests = registry.addImage('test/app', [1536 * 1024, 300 * 1024]);
  const layer = digests[1] as Digest;
  const job = await start('test/app');
  t.is(job.state, 'running');
  t.deepEqual(job.blobs.map((b) => b.digest), digests);
  await until(() => registry.gets.get(layer) === 1);

  // A peer asks for the same layer while the preheat's download is held back.
  const peer = tasks.ensure({ digest: layer, registry: REGISTRY, repository: 'test/app' }, undefined);
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.true(tasks.isInflight(layer), 'the peer joined the download the preheat started');
  const midway = await start('test/app'); // and a second preheat of the same image joins too
  t.true(midway.bytesDone < midway.bytesTotal);
  registry.gate.open();
  const info = await peer;
  t.is(info.digest, layer);
  const done = await finished(job.id);
  t.is(done.state, 'done', JSON.stringify(done));
  t.is(done.bytesDone, done.bytesTotal);
  t.true(done.blobs.every((b) => b.state === 'done'));
  for (const d of digests) t.is(registry.gets.get(d), 1, `${d} fetched once`);
  for (const d of digests) t.true(store.get(d)?.complete, `${d} complete in the cache`);
});

test('a job runs at most blobConcurrency downloads at once and reports bytes as they are verified', async (t) => {
  const { registry, start, finished, until, jobs } = await setUp(t, { blobConcurrency: 3 });
  registry.gated.add('test/many');
  registry.addImage('test/many', Array.from({ length: 9 }, () => 64 * 1024));
  const job = await start('test/many');
  await until(() => registry.open >= 3);
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.is(registry.maxOpen, 3, 'no fourth download while three are held');
  const running = jobs.get(job.id);
  t.is(running.blobs.filter((b) => b.state === 'running').length, 3);
  t.is(running.bytesDone, 0);
  registry.gate.open();
  const done = await finished(job.id);
  t.is(done.state, 'done');
  t.is(registry.maxOpen, 3);
  t.is(done.bytesDone, done.bytesTotal);
  t.truthy(done.finishedAt);
});

test('a blob the registry does not have fails the job with its error; the other blobs are still warmed', async (t) => {
  const { registry, start, finished } = await setUp(t);
  const digests = registry.addImage('test/broken', [100 * 1024, 200 * 1024], 1);
  const missing = digests[3] as Digest;
  const done = await finished((await start('test/broken')).id);
  t.is(done.state, 'failed');
  t.is(done.message, '1 of 4 blobs failed');
  const failed = done.blobs.filter((b) => b.state === 'failed');
  t.deepEqual(failed.map((b) => b.digest), [missing]);
  t.regex(failed[0]?.error ?? '', /blob sha256:[a-f0-9]{64} is unknown/);
  t.is(done.blobs.filter((b) => b.state === 'done').length, 3);
  t.is(done.bytesDone, done.bytesTotal - (failed[0]?.sizeBytes ?? 0));
});

test('a layer larger than the swarm carries is left out, never fetched, and named in the message; the rest is warmed', async (t) => {
  const { registry, start, finished } = await setUp(t);
  const digests = registry.addImage('test/huge', [100 * 1024]);
  // The manifest gains a layer of 64 GiB + 1 byte, which the registry would be asked for only if the job fetched it.
  const huge = digestOf(randomBytes(64));
  const path = '/v2/test/huge/manifests/v1';
  const manifest = JSON.parse(String(registry.manifests.get(path))) as { layers: unknown[] };
  manifest.layers.push({ mediaType: MediaType.ociLayerGzip, digest: huge, size: MAX_BLOB_SIZE_BYTES + 1 });
  registry.manifests.set(path, Buffer.from(JSON.stringify(manifest)));

  const done = await finished((await start('test/huge')).id);
  t.is(done.state, 'done', JSON.stringify(done));
  t.deepEqual(done.blobs.map((b) => b.digest), digests);
  t.true(done.blobs.every((b) => b.state === 'done'));
  t.is(registry.gets.get(huge), undefined, 'the huge layer was not fetched');
  t.deepEqual(done.tooLarge, [{ digest: huge, sizeBytes: MAX_BLOB_SIZE_BYTES + 1 }]);
  t.true(Value.Check(PreheatJobSchema, done), 'the job as the API answers it');
  t.is(done.message, `2 blobs in the supernode's cache; 1 blob larger than the swarm carries (64 GiB) not preheated; pulls take it from the registry: ${huge} (${MAX_BLOB_SIZE_BYTES + 1} bytes)`);
});

test('jobs are bounded: the oldest finished one is forgotten first; with every job running a new one is refused', async (t) => {
  const { registry, start, finished, jobs } = await setUp(t, { maxJobs: 2 });
  registry.addImage('test/quick', [10 * 1024]);
  registry.gated.add('test/slow');
  registry.addImage('test/slow', [10 * 1024]);
  const first = await finished((await start('test/quick')).id);
  const slow = await start('test/slow');
  const again = await finished((await start('test/quick')).id); // the cache holds it: done at once
  t.is(again.state, 'done');
  t.is(jobs.size, 2);
  t.throws(() => jobs.get(first.id), { instanceOf: PreheatJobUnknownError });
  t.is(jobs.get(slow.id).state, 'running');

  const slow2 = await start('test/slow'); // forgets `again`, the only finished one
  t.throws(() => jobs.get(again.id), { instanceOf: PreheatJobUnknownError });
  await t.throwsAsync(start('test/quick'), { instanceOf: PreheatBusyError, message: /2 preheat jobs are running/ });
  registry.gate.open();
  t.is((await finished(slow.id)).state, 'done');
  t.is((await finished(slow2.id)).state, 'done');
  t.is(registry.gets.size, 4, 'config and layer of each image');
  t.true([...registry.gets.values()].every((n) => n === 1), 'each fetched from the registry once');
});
