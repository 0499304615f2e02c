/**
 * With no supernode at all, the node fetches a blob from the registry itself
 * (RegistryFill) and the pull reads it from there as it lands: the reader must
 * find the blob in the store however soon it asks, so that the registry sends
 * the blob to this node once, not a second time through the proxy's fallback.
 * Real PieceStore in a temp dir, a real docker-registry, a SCRIPTED supernode
 * client that never takes a task.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { silentLogger, SwarmUnavailableError, type BlobStream, type TaskInfo, type TaskRequest } from '@shoal/core';
import { RegistryClient } from '@shoal/registry-client';
import { PieceStore } from '@shoal/store';
import { buildImage, isBlobGet, makeTempDir, pushImage, removeTempDir, requireTools, startRegistry } from '@shoal/testkit';
import { Peer, PieceClient, SupernodeClient } from '../src/index.js';

const MiB = 1024 * 1024;
const REPOSITORY = 'test/app';

/** No supernode answers: every task fails as the real client fails when none can be reached. */
class NoSupernode extends SupernodeClient {
  tasks = 0;

  constructor() {
    super({ log: silentLogger() }, { supernodeUrls: ['http://scripted.invalid'], token: undefined });
  }

  override async createTask(request: TaskRequest): Promise<{ info: TaskInfo; supernodeUrl: string }> {
    this.tasks++;
    throw new SwarmUnavailableError(`scripted: no supernode could take ${request.digest}`);
  }
}

async function readAll(stream: BlobStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  if (stream.body !== undefined) {
    for await (const chunk of stream.body) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }
  for (;;) {
    const into = Buffer.alloc(256 * 1024);
    const n = await stream.reader.read(into);
    if (n === 0) break;
    chunks.push(into.subarray(0, n));
  }
  stream.reader.close();
  return Buffer.concat(chunks);
}

test('no supernode: the pull reads the blob from the node’s own registry fetch, and the registry sends it once', async (t) => {
  await requireTools(['docker-registry', 'skopeo']);
  const work = await makeTempDir('shoal-registry-fill');
  t.teardown(() => removeTempDir(work));
  const registry = await startRegistry({});
  t.teardown(() => registry.stop());
  const image = await buildImage({ dir: join(work, 'layout'), tag: 'v1', layers: [{ sizeBytes: 3 * MiB + 3, seed: 'registry-fill-reader' }], gzipLevel: 0 });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: REPOSITORY });
  const layer = image.layers[0];
  if (layer === undefined) throw new Error('image has no layer');

  const log = silentLogger();
  const client = new RegistryClient({ log }, { plainHttpHosts: [registry.host], maxRetries: 0 });
  const dir = await mkdtemp(join(tmpdir(), 'shoal-registry-fill-'));
  const store = await PieceStore.open({ log }, { dir });
  const supernodes = new NoSupernode();
  const pieces = new PieceClient({ token: undefined });
  const peer = new Peer({ log, store, supernodes, pieces, registry: client }, { peerId: 'peer-a', advertiseUrl: 'http://127.0.0.1:1' });
  t.teardown(async () => {
    peer.close();
    await pieces.close();
    await store.close();
    await client.close();
    await rm(dir, { recursive: true, force: true });
  });

  const stream = await peer.openBlob({ digest: layer.digest, registry: registry.host, repository: REPOSITORY, sizeBytes: layer.sizeBytes }, undefined);
  t.is(stream.source, 'upstream');
  const bytes = await readAll(stream);
  t.is(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, layer.digest);
  t.is(supernodes.tasks, 1);
  await store.waitForComplete(layer.digest, { signal: AbortSignal.timeout(10_000) });
  t.true(store.get(layer.digest)?.complete, 'the node stored what it fetched');
  const gets = (await registry.requests()).filter((r) => isBlobGet(r) && r.digest === layer.digest);
  t.is(gets.length, 1, 'one blob GET at the registry');
});
