import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { silentLogger, type Digest } from '@shoal/core';
import { RegistryClient } from '@shoal/registry-client';
import { PieceStore } from '@shoal/store';
import { BlobTasks, type BlobTasksInit } from '../../src/blob-tasks.js';

const MiB = 1024 * 1024;

/**
 * A FAKE registry (docker-registry cannot be made to send slowly): the blobs
 * in `quick` are answered whole at once; any other blob GET is answered with a
 * 4 MiB length and then one byte every `byteEveryMs`, so its fetch holds its
 * slot.
 */
export async function startTricklingRegistry(options: { byteEveryMs: number; quick?: ReadonlyMap<Digest, Buffer> }): Promise<{ host: string; close: () => Promise<void> }> {
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((req, res) => {
    const digest = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(req.url ?? '')?.[1] as Digest | undefined;
    const body = digest === undefined ? undefined : options.quick?.get(digest);
    if (body !== undefined) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
      res.end(body);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(4 * MiB) });
    const timer = setInterval(() => res.write(Buffer.from([1])), options.byteEveryMs);
    timers.add(timer);
    res.on('close', () => {
      clearInterval(timer);
      timers.delete(timer);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      for (const timer of timers) clearInterval(timer);
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** BlobTasks over a real PieceStore in a temp dir and a real registry client for `hosts` (plain HTTP), torn down with the test. */
export async function blobTasksFor(t: ExecutionContext, hosts: string[], init: BlobTasksInit = {}): Promise<{ tasks: BlobTasks; store: PieceStore }> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-supernode-tasks-'));
  const store = await PieceStore.open({ log: silentLogger() }, { dir });
  t.teardown(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: hosts, maxRetries: 0 });
  t.teardown(() => client.close());
  const tasks = new BlobTasks({ log: silentLogger(), store, registry: client }, init);
  t.teardown(() => tasks.close());
  return { tasks, store };
}
