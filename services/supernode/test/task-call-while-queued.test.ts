// A task call with `?waitMs=` for a blob whose fetch has not begun is answered
// 202 within that wait, saying where the blob stands: queued (with how long ago
// the fetches ahead of it got a byte) or starting (its fetch waits for the
// registry's answer). Without it, a call for a queued blob was silent until the
// fetch began, and the supernode's idle timer closed it after 60 s: every node
// waiting for the blob then fetched it from the registry itself.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { Pool } from 'undici';
import { API_PREFIX, digestOf, MAX_TASK_WAIT_MS, silentLogger, TaskWaitingSchema, parseWire, type Digest } from '@shoal/core';
import { RegistryClient } from '@shoal/registry-client';
import { PieceStore } from '@shoal/store';
import { buildSupernodeApp } from '../src/index.js';
import { startTricklingRegistry } from './helpers/trickling-registry.js';

const MiB = 1024 * 1024;
/** The supernode closes a socket silent this long (60 s by default). */
const SOCKET_IDLE_MS = 1_500;

async function supernodeFor(t: ExecutionContext, registries: string[]): Promise<Pool> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-supernode-queue-'));
  const log = silentLogger();
  const store = await PieceStore.open({ log }, { dir });
  const registry = new RegistryClient({ log }, { plainHttpHosts: registries, maxRetries: 0 });
  const supernode = await buildSupernodeApp({ log, store, registry }, { token: undefined, maxConcurrentFetches: 4, maxFetchesPerRegistry: 1, serverTimeouts: { socketIdleMs: SOCKET_IDLE_MS } });
  await supernode.app.listen({ port: 0, host: '127.0.0.1' });
  const address = supernode.app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP port');
  // One connection: the repeated calls below share it, as a node's do.
  const pool = new Pool(`http://127.0.0.1:${address.port}`, { connections: 1 });
  t.teardown(async () => {
    await pool.close();
    supernode.tasks.close();
    await supernode.app.close();
    await registry.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  return pool;
}

async function callTask(pool: Pool, body: { digest: Digest; registry: string; repository: string; sizeBytes?: number }, query: string): Promise<{ status: number; json: unknown; ms: number }> {
  const startedAt = performance.now();
  const response = await pool.request({ path: `${API_PREFIX}/tasks${query}`, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = await response.body.json();
  return { status: response.statusCode, json, ms: performance.now() - startedAt };
}

test('a blob queued behind a moving fetch is answered 202 each wait, never left silent, and says the fetch ahead moves', async (t) => {
  const registry = await startTricklingRegistry({ byteEveryMs: 100 });
  t.teardown(() => registry.close());
  const pool = await supernodeFor(t, [registry.host]);
  const ask = (name: string) => ({ digest: digestOf(name), registry: registry.host, repository: 'app/queue', sizeBytes: 4 * MiB });

  const first = await callTask(pool, ask('the layer that holds the slot'), '?waitMs=2000');
  t.is(first.status, 200, 'the first layer takes the registry\'s one fetch slot and starts');

  // Asked again and again for longer than the supernode lets a socket sit silent.
  const startedAt = performance.now();
  let answers = 0;
  while (performance.now() - startedAt < 2.5 * SOCKET_IDLE_MS) {
    const queued = await callTask(pool, ask('the queued layer'), '?waitMs=1000');
    t.is(queued.status, 202, JSON.stringify(queued.json));
    const waiting = parseWire(TaskWaitingSchema, queued.json, 'task waiting');
    t.is(waiting.phase, 'queued');
    t.is(waiting.ahead, 0, 'nothing else waits ahead of it');
    t.true(waiting.aheadQuietMs !== undefined && waiting.aheadQuietMs <= 2_000, `the fetch ahead got a byte ${waiting.aheadQuietMs} ms ago`);
    t.true(queued.ms >= 900 && queued.ms < 1_800, `answered after ${queued.ms.toFixed(0)} ms`);
    answers++;
  }
  t.true(answers >= 3, `${answers} answers`);

  // A third blob of the same registry waits behind the second.
  const third = await callTask(pool, ask('a third layer'), '?waitMs=200');
  t.is(third.status, 202);
  t.is(parseWire(TaskWaitingSchema, third.json, 'task waiting').ahead, 1);
});

test('a blob whose fetch waits for the registry\'s answer is "starting"; one queued behind it is not moving', async (t) => {
  // Headers are sent with the first byte, which never comes within the test.
  const registry = await startTricklingRegistry({ byteEveryMs: 60_000 });
  t.teardown(() => registry.close());
  const pool = await supernodeFor(t, [registry.host]);
  const ask = (name: string) => ({ digest: digestOf(name), registry: registry.host, repository: 'app/queue', sizeBytes: 4 * MiB });

  const starting = await callTask(pool, ask('waits for headers'), '?waitMs=300');
  t.is(starting.status, 202);
  const waiting = parseWire(TaskWaitingSchema, starting.json, 'task waiting');
  t.is(waiting.phase, 'starting');
  t.is(waiting.aheadQuietMs, undefined);

  const queued = parseWire(TaskWaitingSchema, (await callTask(pool, ask('behind it'), '?waitMs=300')).json, 'task waiting');
  t.is(queued.phase, 'queued');
  t.is(queued.aheadQuietMs, undefined, 'no fetch ahead of it receives bytes');
});

test('waitMs must be whole milliseconds up to the maximum', async (t) => {
  const registry = await startTricklingRegistry({ byteEveryMs: 100 });
  t.teardown(() => registry.close());
  const pool = await supernodeFor(t, [registry.host]);
  const body = { digest: digestOf('any'), registry: registry.host, repository: 'app/queue' };
  for (const bad of ['abc', '-1', '1.5', String(MAX_TASK_WAIT_MS + 1), '', '1e3']) {
    const answer = await callTask(pool, body, `?waitMs=${bad}`);
    t.is(answer.status, 400, `waitMs=${bad}`);
    t.regex((answer.json as { message: string }).message, /waitMs/);
  }
});
