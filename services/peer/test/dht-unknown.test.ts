import dgram from 'node:dgram';
import test from 'ava';
import { digestOf, silentLogger } from '@shoal/core';
import { DhtDiscovery } from '../src/discovery/index.js';

test('a lookup of a digest nobody announced returns [] within the timeout', async (t) => {
  t.timeout(15_000);
  const log = silentLogger();
  const first = await DhtDiscovery.start({ log }, { listen: { host: '127.0.0.1', port: 0 }, bootstrap: [], peerPort: 43_000 });
  const nodes = [first];
  t.teardown(() => Promise.all(nodes.map((node) => node.close())));
  for (let i = 1; i < 4; i++) {
    nodes.push(await DhtDiscovery.start({ log }, { listen: { host: '127.0.0.1', port: 0 }, bootstrap: [`127.0.0.1:${first.address.port}`], peerPort: 43_000 + i }));
  }
  const started = Date.now();
  t.deepEqual(await (nodes[2] as DhtDiscovery).lookup(digestOf('never announced'), { timeoutMs: 3_000 }), []);
  t.true(Date.now() - started <= 3_500);
});

/** A UDP socket that swallows every query: a DHT node that has hung. */
async function silentNode(): Promise<{ address: string; close: () => void }> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { address: `127.0.0.1:${socket.address().port}`, close: () => socket.close() };
}

test('a lookup stuck on an unresponsive node ends at timeoutMs', async (t) => {
  t.timeout(15_000);
  const hung = await silentNode();
  t.teardown(hung.close);
  const node = await DhtDiscovery.start({ log: silentLogger() }, { listen: { host: '127.0.0.1', port: 0 }, bootstrap: [hung.address], peerPort: 43_100 });
  t.teardown(() => node.close());
  const started = Date.now();
  t.deepEqual(await node.lookup(digestOf('x'), { timeoutMs: 300 }), []);
  const elapsed = Date.now() - started;
  t.true(elapsed >= 250 && elapsed < 1_500, `${elapsed} ms`);
});

test('an aborted lookup resolves at once with what it has', async (t) => {
  t.timeout(15_000);
  const hung = await silentNode();
  t.teardown(hung.close);
  const node = await DhtDiscovery.start({ log: silentLogger() }, { listen: { host: '127.0.0.1', port: 0 }, bootstrap: [hung.address], peerPort: 43_200 });
  t.teardown(() => node.close());
  const controller = new AbortController();
  const started = Date.now();
  const pending = node.lookup(digestOf('y'), { timeoutMs: 10_000, signal: controller.signal });
  setTimeout(() => controller.abort(), 100);
  t.deepEqual(await pending, []);
  t.true(Date.now() - started < 1_000);
  t.deepEqual(await node.lookup(digestOf('y'), { signal: controller.signal }), [], 'already aborted');
});

test('lookups after close return []', async (t) => {
  const node = await DhtDiscovery.start({ log: silentLogger() }, { listen: { host: '127.0.0.1', port: 0 }, bootstrap: [], peerPort: 43_300 });
  await node.close();
  t.deepEqual(await node.lookup(digestOf('z')), []);
  node.announce(digestOf('z'));
  t.is(node.announcedCount, 0);
  await node.close();
});
