// While the supernode answers a task call "queued" (202, a TaskWaiting) the
// peer asks again, and the wait counts as progress for the blob (what the
// proxy's first-byte timer reads) only while the fetches ahead of it got a byte
// lately. A STUB supernode (plain HTTP) answers the first few calls queued,
// then refuses the blob, which ends the test's fill.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { digestOf, silentLogger, type TaskWaiting } from '@shoal/core';
import { PieceStore } from '@shoal/store';
import { Peer, PieceClient, SupernodeClient, SupernodeRefusedError, TASK_WAIT_MS } from '../src/index.js';
import { stubServer } from './stub-server.js';

const QUEUED_ANSWERS = 5;
const ANSWER_AFTER_MS = 300;

async function waitInQueue(t: ExecutionContext, aheadQuietMs: number | undefined): Promise<{ startedAt: number; progressSeen: number[]; paths: string[]; outcome: unknown }> {
  const digest = digestOf(`queued blob ${String(aheadQuietMs)}`);
  const paths: string[] = [];
  const supernode = await stubServer((req, res) => {
    req.resume();
    if (req.url === '/readyz') return void res.end('ok');
    paths.push(req.url ?? '');
    setTimeout(() => {
      res.setHeader('content-type', 'application/json');
      if (paths.length <= QUEUED_ANSWERS) {
        const waiting: TaskWaiting = { digest, phase: 'queued', ahead: 1, waitedMs: paths.length * ANSWER_AFTER_MS, ...(aheadQuietMs === undefined ? {} : { aheadQuietMs }) };
        res.statusCode = 202;
        res.end(JSON.stringify(waiting));
      } else {
        res.statusCode = 404;
        res.end(JSON.stringify({ code: 'SHOAL_BLOB_UNKNOWN', message: 'gone' }));
      }
    }, ANSWER_AFTER_MS);
  });
  t.teardown(supernode.close);
  const dir = await mkdtemp(join(tmpdir(), 'shoal-queued-task-'));
  const log = silentLogger();
  const store = await PieceStore.open({ log }, { dir });
  const supernodes = new SupernodeClient({ log }, { supernodeUrls: [supernode.url] });
  t.teardown(async () => {
    await supernodes.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const peer = new Peer({ log, store, supernodes, pieces: new PieceClient({ token: undefined }) }, { peerId: 'peer-queued', advertiseUrl: 'http://127.0.0.1:1' });

  const startedAt = Date.now();
  const opening = peer.openBlob({ digest, registry: 'registry.example', repository: 'app/queued', sizeBytes: 4 * 1024 * 1024, registryAuthorization: undefined }, undefined);
  const progressSeen: number[] = [];
  const watch = setInterval(() => {
    const at = peer.progressAt(digest);
    if (at !== undefined) progressSeen.push(at);
  }, 50);
  const outcome = await opening.then(
    () => 'opened',
    (err: unknown) => err,
  );
  clearInterval(watch);
  return { startedAt, progressSeen, paths, outcome };
}

test('a blob queued behind fetches that move: the peer asks again with waitMs, and each answer is progress', async (t) => {
  const { startedAt, progressSeen, paths, outcome } = await waitInQueue(t, 400);
  t.is(paths.length, QUEUED_ANSWERS + 1, 'asked again after each queued answer');
  for (const path of paths) t.is(path, `/api/v1/tasks?waitMs=${TASK_WAIT_MS}`);
  t.true(outcome instanceof SupernodeRefusedError, String(outcome));
  const latest = Math.max(...progressSeen);
  t.true(latest - startedAt >= (QUEUED_ANSWERS - 1) * ANSWER_AFTER_MS, `progress noted ${latest - startedAt} ms after the start`);
});

test('a blob queued behind fetches that got no byte lately: the wait is not progress', async (t) => {
  for (const quiet of [undefined, 60_000]) {
    const { startedAt, progressSeen, paths, outcome } = await waitInQueue(t, quiet);
    t.is(paths.length, QUEUED_ANSWERS + 1);
    t.true(outcome instanceof SupernodeRefusedError, String(outcome));
    const latest = Math.max(...progressSeen);
    t.true(latest - startedAt < ANSWER_AFTER_MS, `aheadQuietMs ${String(quiet)}: progress noted ${latest - startedAt} ms after the start`);
  }
});
