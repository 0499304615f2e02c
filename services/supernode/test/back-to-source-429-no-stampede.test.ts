import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { digestOf, silentLogger, type Digest } from '@shoal/core';
import { RegistryClient } from '@shoal/registry-client';
import { BlobTasks, MAX_FAILED_START_MEMORY_MS } from '../src/blob-tasks.js';
import { BackToSourceBackoffError } from '../src/errors.js';
import { tempStore } from './helpers/temp-store.js';

/** A FAKE registry that only rate-limits (docker-registry never answers 429), counting blob GETs. */
async function startRateLimitedRegistry(retryAfter: string): Promise<{ host: string; blobGets: () => number; close: () => Promise<void> }> {
  let gets = 0;
  const server = createServer((req, res) => {
    if (req.method === 'GET' && /\/blobs\//.test(req.url ?? '')) gets++;
    res.writeHead(429, { 'retry-after': retryAfter, 'content-type': 'application/json' });
    res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    blobGets: () => gets,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

async function setUp(t: ExecutionContext, retryAfter: string) {
  const registry = await startRateLimitedRegistry(retryAfter);
  t.teardown(() => registry.close());
  const store = await tempStore(t, 'supernode-429');
  // One retry, honouring Retry-After, as the supernode's own client does (with more retries).
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: [registry.host], maxRetries: 1 });
  t.teardown(() => client.close());
  let now = 1_000_000;
  const clock = { now: () => now };
  const tasks = new BlobTasks({ log: silentLogger(), store, registry: client, clock });
  t.teardown(() => tasks.close());
  const digest: Digest = digestOf('rate-limited blob');
  const ask = () => tasks.ensure({ digest, registry: registry.host, repository: 'library/app' }, undefined);
  return { registry, tasks, ask, advance: (ms: number) => (now += ms) };
}

// Before: a failed back-to-source start was retried by the very next caller,
// so a swarm of peers retrying a rate-limited blob hammered the registry.
test('20 peers asking for a blob the registry rate-limits (429, Retry-After) cost one download attempt', async (t) => {
  const { registry, ask, advance } = await setUp(t, '1');

  const first = await Promise.allSettled(Array.from({ length: 20 }, () => ask()));
  t.true(first.every((r) => r.status === 'rejected'));
  // One start for all 20: its first GET and the one retry after Retry-After.
  t.is(registry.blobGets(), 2);

  // Within the Retry-After window nobody asks the registry again.
  const again = await Promise.allSettled(Array.from({ length: 20 }, () => ask()));
  t.true(again.every((r) => r.status === 'rejected' && r.reason instanceof BackToSourceBackoffError));
  t.is(registry.blobGets(), 2);

  // Once it has passed, the next caller tries again (once for everyone).
  advance(1_001);
  await Promise.allSettled(Array.from({ length: 20 }, () => ask()));
  t.is(registry.blobGets(), 4);
});

test('a Retry-After longer than 10 s is remembered for 10 s only', async (t) => {
  const { registry, ask, advance } = await setUp(t, '3600');
  // The client does not wait an hour: it gives up at once.
  await Promise.allSettled(Array.from({ length: 20 }, () => ask()));
  t.is(registry.blobGets(), 1);
  advance(MAX_FAILED_START_MEMORY_MS - 1);
  const within = await Promise.allSettled([ask()]);
  t.true(within[0]?.status === 'rejected' && within[0].reason instanceof BackToSourceBackoffError);
  t.is(registry.blobGets(), 1);
  advance(1);
  await Promise.allSettled([ask()]);
  t.is(registry.blobGets(), 2);
});
