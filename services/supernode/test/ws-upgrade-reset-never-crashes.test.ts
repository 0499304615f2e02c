import { once } from 'node:events';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { API_PREFIX } from '@shoal/core';
import { PEERS_WS_PATH } from '../src/index.js';
import { startSupernode } from './helpers/fixture.js';

// Before: node's HTTP server takes its 'error' listener off a socket it hands
// to 'upgrade'. The supernode answered a refused upgrade (wrong path, wrong
// token) on that bare socket, so a client that reset the connection meanwhile
// made the socket emit ECONNRESET/EPIPE with no listener: an uncaught
// exception that took the supernode down.

/** Sends an upgrade request and resets the connection at once (RST, not FIN). */
async function upgradeThenReset(port: number, path: string): Promise<void> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  );
  socket.resetAndDestroy();
}

for (const [what, path, token] of [
  ['an unknown path', `${API_PREFIX}/nowhere`, undefined],
  ['a missing cluster token', PEERS_WS_PATH, 'the-cluster-secret'],
] as const) {
  test(`a client that resets its upgrade request for ${what} does not take the supernode down`, async (t) => {
    const supernode = await startSupernode({ blobs: [], init: { token } });
    t.teardown(() => supernode.close());
    for (let i = 0; i < 20; i++) await upgradeThenReset(supernode.port, path);
    // An uncaught error on one of the refused sockets fails the file.
    await sleep(100);
    const health = await fetch(`${supernode.url}/healthz`);
    t.is(health.status, 200);
  });
}
