/**
 * Regression: a registration with another peer's `peerId` replaced the live peer: its
 * advertised URL was overwritten, and when the impostor's socket closed the entry went
 * with it, so the real peer's heartbeats were refused and it was out of the swarm for
 * about 100 s.
 *
 * Now a live peer id belongs to its session: a second registration is refused unless it
 * shows the peer's own secret (sent with its first registration). The real peer keeps
 * its place, can reconnect with its secret, and an old socket of it closing does not
 * remove the newer one. A real supernode (fake registry client, which this test never uses).
 */
import test from 'ava';
import { request } from 'undici';
import { WebSocket } from 'ws';
import { API_PREFIX } from '@shoal/core';
import { startSupernode } from './helpers/fixture.js';

const SECRET = 'a'.repeat(43);

interface Frame {
  type: string;
  code?: string;
  peerId?: string;
}

async function connect(url: string): Promise<{ ws: WebSocket; frames: Frame[]; closed: Promise<number>; send(m: object): void; next(p: (f: Frame) => boolean): Promise<Frame> }> {
  const ws = new WebSocket(`${url.replace('http', 'ws')}${API_PREFIX}/peers/ws`);
  const frames: Frame[] = [];
  ws.on('message', (d: Buffer) => frames.push(JSON.parse(d.toString('utf8')) as Frame));
  const closed = new Promise<number>((resolve) => ws.once('close', resolve));
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  return {
    ws,
    frames,
    closed,
    send: (m) => ws.send(JSON.stringify(m)),
    async next(p) {
      const end = Date.now() + 5_000;
      for (;;) {
        const f = frames.find(p);
        if (f !== undefined) return f;
        if (Date.now() > end) throw new Error(`no such frame; got ${JSON.stringify(frames)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
}

test('a second registration of a live peer id is refused without its secret, and the live peer keeps its place', async (t) => {
  const supernode = await startSupernode({ blobs: [] });
  t.teardown(() => supernode.close());
  const status = async (): Promise<Array<{ peerId: string; advertiseUrl: string }>> => {
    const res = await request(`${supernode.url}${API_PREFIX}/status`);
    return ((await res.body.json()) as { peers: Array<{ peerId: string; advertiseUrl: string }> }).peers;
  };

  const real = await connect(supernode.url);
  t.teardown(() => real.ws.terminate());
  real.send({ type: 'register', peerId: 'node-a', advertiseUrl: 'http://127.0.0.1:1001', peerSecret: SECRET });
  await real.next((f) => f.type === 'registered');

  for (const impostor of [{}, { peerSecret: 'b'.repeat(43) }]) {
    const rogue = await connect(supernode.url);
    t.teardown(() => rogue.ws.terminate());
    rogue.send({ type: 'register', peerId: 'node-a', advertiseUrl: 'http://127.0.0.1:6666', ...impostor });
    const answer = await rogue.next((f) => f.type === 'error' || f.type === 'registered');
    t.like(answer, { type: 'error', code: 'SHOAL_PEER_ID_TAKEN' });
    t.is(await rogue.closed, 1008, 'the impostor is disconnected');
  }

  real.send({ type: 'heartbeat' });
  await new Promise((r) => setTimeout(r, 200));
  t.deepEqual(real.frames.filter((f) => f.type === 'error'), [], 'the real peer\'s heartbeats are still accepted');
  t.deepEqual((await status()).map((p) => [p.peerId, p.advertiseUrl]), [['node-a', 'http://127.0.0.1:1001']]);

  // The real peer reconnects (its old socket not yet closed), showing its secret: accepted.
  const again = await connect(supernode.url);
  t.teardown(() => again.ws.terminate());
  again.send({ type: 'register', peerId: 'node-a', advertiseUrl: 'http://127.0.0.1:1001', peerSecret: SECRET });
  await again.next((f) => f.type === 'registered');
  real.ws.close();
  await real.closed;
  await new Promise((r) => setTimeout(r, 200));
  t.deepEqual((await status()).map((p) => p.peerId), ['node-a'], 'the old socket closing does not remove the newer session');
  again.send({ type: 'heartbeat' });
  await new Promise((r) => setTimeout(r, 100));
  t.deepEqual(again.frames.filter((f) => f.type === 'error'), []);

  // Once the peer is gone, its id is free again.
  again.ws.close();
  await again.closed;
  await new Promise((r) => setTimeout(r, 200));
  t.deepEqual(await status(), []);
  const next = await connect(supernode.url);
  t.teardown(() => next.ws.terminate());
  next.send({ type: 'register', peerId: 'node-a', advertiseUrl: 'http://127.0.0.1:1002', peerSecret: 'c'.repeat(43) });
  await next.next((f) => f.type === 'registered');
});
