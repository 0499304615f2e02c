/**
 * A node agent that cannot open its session is refused with a bare 401, and the supernode
 * counts why (`shoal_supernode_token_rejections_total{transport="websocket",reason}`):
 * another cluster token and clocks out of step need different fixes.
 */
import test from 'ava';
import { WebSocket } from 'ws';
import { ClusterAuth, SIGNATURE_MAX_SKEW_MS } from '@shoal/core';
import { PEERS_WS_PATH } from '../src/index.js';
import { startSupernode } from './helpers/fixture.js';

const TOKEN = 'peer-session-refusals-token-0123456789';

/** The status the supernode answered the upgrade with: 101 when the session opened. */
function upgradeStatus(url: string, auth: ClusterAuth): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}${PEERS_WS_PATH}`, { headers: auth.sign('GET', PEERS_WS_PATH, { kind: 'supernode' }), handshakeTimeout: 5_000 });
    ws.on('open', () => {
      ws.close();
      resolve(101);
    });
    ws.on('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('error', (err) => reject(err));
  });
}

test('a refused session is counted by its reason', async (t) => {
  const supernode = await startSupernode({ blobs: [], init: { token: TOKEN } });
  t.teardown(() => supernode.close());
  t.is(await upgradeStatus(supernode.url, new ClusterAuth({}, { token: TOKEN })), 101, 'the cluster token opens a session: the refusals below are the check');
  t.is(await upgradeStatus(supernode.url, new ClusterAuth({}, { token: 'another-cluster-token-0123456789' })), 401);
  t.is(await upgradeStatus(supernode.url, new ClusterAuth({ clock: { now: () => Date.now() - 2 * SIGNATURE_MAX_SKEW_MS } }, { token: TOKEN })), 401);
  t.is(await upgradeStatus(supernode.url, new ClusterAuth({}, { token: undefined })), 401);

  const metrics = await (await fetch(`${supernode.url}/metrics`)).text();
  const byReason = Object.fromEntries(
    [...metrics.matchAll(/^shoal_supernode_token_rejections_total\{transport="websocket",reason="([a-z-]+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]),
  );
  t.deepEqual(byReason, { 'unknown-key': 1, expired: 1, missing: 1 });
});
