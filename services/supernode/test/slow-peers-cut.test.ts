/**
 * Regression: the supernode set no socket idle or request timeout, and `ws`
 * turns a socket's timeout off once it is upgraded: a peer that opened its
 * WebSocket and went silent (or never registered) held its socket forever, a
 * POST body trickled a byte at a time was never cut, and slow headers were
 * bounded only by Node's defaults (60 s, checked every 30 s).
 *
 * Now slowloris senders, body tricklers and silent WebSockets are all closed
 * within the server timeouts (shortened here), while a peer that keeps beating
 * stays connected well past every one of them.
 */
import { connect } from 'node:net';
import { maxHeaderSize } from 'node:http';
import { performance } from 'node:perf_hooks';
import test from 'ava';
import WebSocket from 'ws';
import { API_PREFIX } from '@shoal/core';
import {
  PEERS_WS_PATH,
  SUPERNODE_SERVER_BODY_LIMIT_BYTES,
  SUPERNODE_SERVER_HEADERS_TIMEOUT_MS,
  SUPERNODE_SERVER_KEEP_ALIVE_TIMEOUT_MS,
  SUPERNODE_SERVER_REQUEST_TIMEOUT_MS,
  SUPERNODE_SERVER_SOCKET_IDLE_TIMEOUT_MS,
} from '../src/index.js';
import { startSupernode } from './helpers/fixture.js';
import { logConnections, slowloris, until } from '@shoal/testkit';

const SHORT = { headersMs: 1_000, requestMs: 2_000, socketIdleMs: 1_500, keepAliveMs: 1_000, peerSocketIdleMs: 1_500 };

test('slowloris senders, body tricklers and silent WebSockets are cut', async (t) => {
  t.timeout(60_000);
  const supernode = await startSupernode({ blobs: [], init: { serverTimeouts: SHORT } });
  t.teardown(() => supernode.close());
  const connections = logConnections(supernode.app.server);

  const loris = Array.from({ length: 100 }, () => slowloris(supernode.port, `GET ${API_PREFIX}/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ${'p'.repeat(200)}\r\n`, 100));
  const tricklers = Array.from({ length: 50 }, () =>
    slowloris(supernode.port, `POST ${API_PREFIX}/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n${'{'.repeat(2_000)}`, 5),
  );
  const silent = Array.from({ length: 50 }, () => new WebSocket(`ws://127.0.0.1:${supernode.port}${PEERS_WS_PATH}`));
  for (const ws of silent) ws.on('error', () => {});
  t.teardown(() => {
    for (const socket of [...loris, ...tricklers]) socket.destroy();
    for (const ws of silent) ws.terminate();
  });
  await until(() => connections.accepted === 200, 10_000, '200 connections accepted');
  await until(() => connections.open === 0, 15_000, 'the server to close every connection');
  const longest = Math.max(...connections.lifetimesMs);
  t.log(`200 connections closed by the server; longest lived ${Math.round(longest)} ms`);
  t.true(longest < 8_000, `a connection lived ${Math.round(longest)} ms`);
  t.true(silent.every((ws) => ws.readyState === WebSocket.CLOSED));
});

test('a peer that keeps beating stays connected past every timeout; one that goes silent is closed and forgotten', async (t) => {
  t.timeout(30_000);
  const supernode = await startSupernode({ blobs: [], init: { serverTimeouts: SHORT } });
  t.teardown(() => supernode.close());

  const open = async (peerId: string): Promise<WebSocket> => {
    const ws = new WebSocket(`ws://127.0.0.1:${supernode.port}${PEERS_WS_PATH}`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => ws.send(JSON.stringify({ type: 'register', peerId, advertiseUrl: 'http://127.0.0.1:1' })));
      ws.once('message', () => resolve());
      ws.once('error', reject);
    });
    return ws;
  };
  const beating = await open('beating');
  const quiet = await open('quiet');
  const beat = setInterval(() => beating.send(JSON.stringify({ type: 'heartbeat' })), 300);
  t.teardown(() => {
    clearInterval(beat);
    beating.terminate();
    quiet.terminate();
  });
  const quietClosed = new Promise<number>((resolve) => quiet.once('close', () => resolve(performance.now())));
  const started = performance.now();

  // Longer than the headers, request, socket idle and peer socket idle timeouts together.
  await new Promise((resolve) => setTimeout(resolve, 4_500));
  t.is(beating.readyState, WebSocket.OPEN);
  t.truthy(supernode.peers.get('beating'));
  const closedAfter = (await quietClosed) - started;
  t.true(closedAfter < 4_000, `the silent peer was closed after ${Math.round(closedAfter)} ms`);
  t.is(supernode.peers.get('quiet'), undefined);
});

test('the supernode applies its documented limits: timeouts, 16 KiB headers, a body limit on every POST route', async (t) => {
  const supernode = await startSupernode({ blobs: [] });
  t.teardown(() => supernode.close());
  const server = supernode.app.server;
  t.is(server.headersTimeout, SUPERNODE_SERVER_HEADERS_TIMEOUT_MS);
  t.is(server.requestTimeout, SUPERNODE_SERVER_REQUEST_TIMEOUT_MS);
  t.is(server.timeout, SUPERNODE_SERVER_SOCKET_IDLE_TIMEOUT_MS);
  t.is(server.keepAliveTimeout, SUPERNODE_SERVER_KEEP_ALIVE_TIMEOUT_MS);
  t.deepEqual([SUPERNODE_SERVER_HEADERS_TIMEOUT_MS, SUPERNODE_SERVER_REQUEST_TIMEOUT_MS, SUPERNODE_SERVER_SOCKET_IDLE_TIMEOUT_MS], [10_000, 30_000, 60_000]);
  t.is(maxHeaderSize, 16 * 1024);

  // Every POST route, found from the router: none takes a body over the app's limit.
  const posts = supernode.app
    .printRoutes({ method: 'POST', commonPrefix: false })
    .split('\n')
    .map((line) => /(\/\S+) \(POST\)/.exec(line)?.[1])
    .filter((path): path is string => path !== undefined);
  t.true(posts.length >= 2, `POST routes: ${posts.join(', ')}`);
  for (const path of posts) {
    const url = path.replace(':digest', `sha256:${'a'.repeat(64)}`);
    const response = await supernode.app.inject({ method: 'POST', url, payload: `"${'x'.repeat(SUPERNODE_SERVER_BODY_LIMIT_BYTES)}"`, headers: { 'content-type': 'application/json' } });
    t.is(response.statusCode, 413, path);
    t.like(response.json(), { code: 'FST_ERR_CTP_BODY_TOO_LARGE' });
  }
  const task = await supernode.app.inject({ method: 'POST', url: `${API_PREFIX}/tasks`, payload: `"${'x'.repeat(16 * 1024)}"`, headers: { 'content-type': 'application/json' } });
  t.is(task.statusCode, 413, 'tasks take at most 16 KiB');

  const big = await new Promise<string>((resolve) => {
    const socket = connect(supernode.port, '127.0.0.1', () => socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: ${'p'.repeat(17 * 1024)}\r\n\r\n`));
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('close', () => resolve(text));
    socket.on('error', () => resolve(text));
  });
  t.regex(big, /^HTTP\/1\.1 431 /);
});
