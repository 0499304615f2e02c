// Bug pinned here: task calls and schedule calls shared one pool of 8 connections per
// supernode. A task call is answered only once the supernode's fetch of the blob has
// begun, and with 20 layers fetched at once most of them waited behind the supernode's
// per-registry cap: they held every connection, and the node's schedule calls for the
// layers already arriving queued behind them. bench:swarm, N = 16, 64 MiB in 20 layers,
// 10 Mbit/s: p50 1.79–2.24 × S/B with one pool, 1.34–1.36 with a pool for task calls.
import test from 'ava';
import { silentLogger, type Digest } from '@shoal/core';
import { SupernodeClient } from '../src/index.js';
import { stubServer } from './stub-server.js';

const digest = (i: number): Digest => `sha256:${i.toString(16).padStart(64, 'd')}` as Digest;

/**
 * A stub supernode (not the real one: its fetch queue is what is imitated): task calls
 * wait until released, as behind a full back-to-source queue; schedule calls are held
 * `scheduleHoldMs`, as a long-poll with nothing to assign.
 */
async function queueingSupernode(scheduleHoldMs: number): Promise<{ url: string; release: () => void; close: () => Promise<void> }> {
  const waiting: Array<() => void> = [];
  let released = false;
  const server = await stubServer((req, res) => {
    req.resume();
    if (req.url === '/readyz') {
      res.end('ok');
      return;
    }
    const answer = (body: unknown): void => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(body));
    };
    if (req.url?.endsWith('/tasks') === true) {
      const go = (): void => answer({ code: 'SHOAL_TEST', message: 'released' });
      if (released) go();
      else waiting.push(go);
      return;
    }
    setTimeout(() => answer({ assignments: [], seedComplete: false }), scheduleHoldMs);
  });
  return {
    ...server,
    release: () => {
      released = true;
      for (const go of waiting.splice(0)) go();
    },
  };
}

test('schedule calls are answered while task calls wait on the supernode’s fetch queue', async (t) => {
  const sn = await queueingSupernode(0);
  t.teardown(sn.close);
  const client = new SupernodeClient({ log: silentLogger() }, { supernodeUrls: [sn.url] });
  t.teardown(() => client.close());
  // Twelve of an image's layers whose fetch has not begun at the supernode.
  const tasks = Array.from({ length: 12 }, (_, i) =>
    client.createTask({ digest: digest(i), registry: 'registry.test', repository: 'app', sizeBytes: 1024, peerId: 'n1' }, undefined).catch(() => undefined),
  );
  await new Promise((resolve) => setTimeout(resolve, 100));
  const startedAt = Date.now();
  await client.schedule(sn.url, digest(99), { peerId: 'n1', limit: 1 });
  const waitedMs = Date.now() - startedAt;
  t.true(waitedMs < 500, `the schedule call waited ${waitedMs} ms behind task calls`);
  sn.release();
  await Promise.all(tasks);
});

test('a held schedule call per layer of a 20-layer image runs at once, not in turns', async (t) => {
  const holdMs = 600;
  const sn = await queueingSupernode(holdMs);
  t.teardown(sn.close);
  const client = new SupernodeClient({ log: silentLogger() }, { supernodeUrls: [sn.url] });
  t.teardown(() => client.close());
  const startedAt = Date.now();
  await Promise.all(Array.from({ length: 20 }, (_, i) => client.schedule(sn.url, digest(i), { peerId: 'n1', limit: 1 })));
  const tookMs = Date.now() - startedAt;
  // With 8 connections the 20 calls take three turns of holdMs.
  t.true(tookMs < 2 * holdMs, `20 held schedule calls took ${tookMs} ms`);
});
