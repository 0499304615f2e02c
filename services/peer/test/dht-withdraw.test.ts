import dgram from 'node:dgram';
import test from 'ava';
import { digestOf, silentLogger } from '@shoal/core';
import { DhtDiscovery, dhtInfoHash } from '../src/discovery/index.js';

// Counts announce_peer queries for one info hash, at the moment they are handed to the socket.
let watched: Buffer | undefined;
let announcesSent = 0;
const ANNOUNCE_PEER = Buffer.from('13:announce_peer');
const originalSend = dgram.Socket.prototype.send;
dgram.Socket.prototype.send = function (this: dgram.Socket, ...args: unknown[]) {
  const msg = args[0];
  if (watched !== undefined && Buffer.isBuffer(msg) && msg.includes(ANNOUNCE_PEER) && msg.includes(watched)) announcesSent++;
  return (originalSend as (...a: unknown[]) => void).apply(this, args);
} as typeof dgram.Socket.prototype.send;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('withdraw stops re-announcing at once, and the swarm forgets the holder after the peer ttl', async (t) => {
  t.timeout(15_000);
  const log = silentLogger();
  // Short periods so that re-announcing and expiry both show within the test.
  const timing = { reannounceIntervalMs: 150, peerTtlMs: 600 };
  const first = await DhtDiscovery.start({ log }, { listen: { host: '127.0.0.1', port: 0 }, bootstrap: [], peerPort: 42_000, ...timing });
  const nodes = [first];
  t.teardown(() => Promise.all(nodes.map((node) => node.close())));
  const bootstrap = [`127.0.0.1:${first.address.port}`];
  for (let i = 1; i < 4; i++) {
    nodes.push(await DhtDiscovery.start({ log }, { listen: { host: '127.0.0.1', port: 0 }, bootstrap, peerPort: 42_000 + i, ...timing }));
  }
  const holder = nodes[1] as DhtDiscovery;
  const seeker = nodes[3] as DhtDiscovery;
  const digest = digestOf('a layer that gets evicted');
  watched = dhtInfoHash(digest);

  holder.announce(digest);
  t.is(holder.announcedCount, 1);
  let urls: string[] = [];
  for (const end = Date.now() + 5_000; urls.length === 0 && Date.now() < end; await sleep(50)) {
    urls = await seeker.lookup(digest, { timeoutMs: 1_000 });
  }
  t.deepEqual(urls, ['http://127.0.0.1:42001']);

  // The timer keeps announcing while the blob is held.
  const before = announcesSent;
  await sleep(600);
  t.true(announcesSent > before, 're-announced while held');

  holder.withdraw(digest);
  t.is(holder.announcedCount, 0);
  const atWithdraw = announcesSent;
  await sleep(800);
  t.is(announcesSent, atWithdraw, 'no announce_peer after withdraw');

  // Stored announcements live 2/3..4/3 of peerTtlMs without a refresh.
  for (const end = Date.now() + 5_000; urls.length > 0 && Date.now() < end; await sleep(100)) {
    urls = await seeker.lookup(digest, { timeoutMs: 1_000 });
  }
  t.deepEqual(urls, []);
});
