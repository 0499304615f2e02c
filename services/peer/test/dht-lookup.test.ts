import dgram from 'node:dgram';
import test, { type ExecutionContext } from 'ava';
import { digestOf, silentLogger, type Digest } from '@shoal/core';
import { DhtDiscovery } from '../src/discovery/index.js';

// Every UDP datagram this test process sends, by destination: the DHT must
// only ever talk to the loopback nodes the test created.
const sentTo: string[] = [];
const originalSend = dgram.Socket.prototype.send;
dgram.Socket.prototype.send = function (this: dgram.Socket, ...args: unknown[]) {
  // send(msg, offset, length, port, address, cb) or send(msg, port, address, cb)
  const address = typeof args[1] === 'number' && typeof args[2] === 'number' ? args[4] : args[2];
  sentTo.push(typeof address === 'string' ? address : '<default>');
  return (originalSend as (...a: unknown[]) => void).apply(this, args);
} as typeof dgram.Socket.prototype.send;

const PEER_PORT_BASE = 41_000;

async function startSwarm(t: ExecutionContext, count: number): Promise<DhtDiscovery[]> {
  const log = silentLogger();
  const first = await DhtDiscovery.start({ log }, { listen: { host: '127.0.0.1', port: 0 }, bootstrap: [], peerPort: PEER_PORT_BASE });
  const nodes = [first];
  t.teardown(() => Promise.all(nodes.map((node) => node.close())));
  const bootstrap = [`${first.address.host}:${first.address.port}`];
  for (let i = 1; i < count; i++) {
    nodes.push(await DhtDiscovery.start({ log }, { listen: { host: '127.0.0.1', port: 0 }, bootstrap, peerPort: PEER_PORT_BASE + i }));
  }
  return nodes;
}

/** Looks up until something is found or `deadlineMs` passes (announces travel asynchronously). */
async function lookupUntilFound(node: DhtDiscovery, digest: Digest, deadlineMs: number): Promise<string[]> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const urls = await node.lookup(digest, { timeoutMs: 2_000 });
    if (urls.length > 0 || Date.now() > end) return urls;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('peers find the one node that announced a digest, and only on loopback', async (t) => {
  t.timeout(15_000);
  const nodes = await startSwarm(t, 5);
  const digest = digestOf('a layer only node 2 holds');
  const holder = nodes[2] as DhtDiscovery;
  holder.announce(digest);

  for (const [i, node] of nodes.entries()) {
    if (node === holder) continue;
    t.deepEqual(await lookupUntilFound(node, digest, 6_000), [`http://127.0.0.1:${PEER_PORT_BASE + 2}`], `node ${i}`);
  }
  // Others store the holder's own announcement; it must not be handed back to it.
  t.deepEqual(await holder.lookup(digest, { timeoutMs: 2_000 }), []);

  for (const node of nodes) {
    const hosts = new Set(node.knownNodes().map((n) => n.host));
    t.true(hosts.size > 0);
    t.deepEqual([...hosts], ['127.0.0.1']);
  }
  t.true(sentTo.length > 0);
  t.deepEqual([...new Set(sentTo)], ['127.0.0.1']);
});

test('a lookup de-duplicates holders and stops at the limit', async (t) => {
  t.timeout(15_000);
  const nodes = await startSwarm(t, 6);
  const digest = digestOf('a layer three nodes hold');
  for (const i of [1, 3, 5]) (nodes[i] as DhtDiscovery).announce(digest);
  // Announcing again while held changes nothing.
  (nodes[1] as DhtDiscovery).announce(digest);
  const seeker = nodes[4] as DhtDiscovery;

  const expected = [1, 3, 5].map((i) => `http://127.0.0.1:${PEER_PORT_BASE + i}`);
  const end = Date.now() + 8_000;
  let urls: string[] = [];
  while (Date.now() < end) {
    urls = await seeker.lookup(digest, { timeoutMs: 2_000 });
    if (urls.length === expected.length) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.deepEqual([...urls].sort(), expected);

  const one = await seeker.lookup(digest, { limit: 1, timeoutMs: 2_000 });
  t.is(one.length, 1);
  t.true(expected.includes(one[0] as string));
  t.deepEqual([...new Set(sentTo)], ['127.0.0.1']);
});
