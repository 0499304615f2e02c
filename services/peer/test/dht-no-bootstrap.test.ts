import dgram from 'node:dgram';
import dns from 'node:dns';
import { isIP } from 'node:net';
import test from 'ava';
import { ConfigError, digestOf, silentLogger } from '@shoal/core';
import { DhtDiscovery } from '../src/discovery/index.js';

// bittorrent-dht falls back to the public BitTorrent routers when it is given no
// bootstrap list. With `bootstrap: []`, a node must send nothing and resolve no name.
const sent: unknown[] = [];
const originalSend = dgram.Socket.prototype.send;
dgram.Socket.prototype.send = function (this: dgram.Socket, ...args: unknown[]) {
  sent.push(args);
  return (originalSend as (...a: unknown[]) => void).apply(this, args);
} as typeof dgram.Socket.prototype.send;
const resolved: string[] = [];
const originalLookup = dns.lookup;
// k-rpc-socket resolves host names with the callback form of dns.lookup (dgram's
// bind also passes the listen IP through it, which resolves nothing).
(dns as { lookup: unknown }).lookup = (hostname: string, ...rest: unknown[]) => {
  if (isIP(hostname) === 0) resolved.push(hostname);
  return (originalLookup as (...a: unknown[]) => void)(hostname, ...rest);
};

test('a node with an empty bootstrap list contacts nobody', async (t) => {
  t.timeout(15_000);
  const node = await DhtDiscovery.start({ log: silentLogger() }, { listen: { host: '127.0.0.1', port: 0 }, bootstrap: [], peerPort: 44_000, reannounceIntervalMs: 100 });
  t.teardown(() => node.close());
  const digest = digestOf('held alone');
  node.announce(digest);
  t.deepEqual(await node.lookup(digest, { timeoutMs: 500 }), []);
  // Several re-announce periods, and the library's bootstrap walk on the next tick.
  await new Promise((resolve) => setTimeout(resolve, 600));
  t.deepEqual(node.knownNodes(), []);
  t.is(sent.length, 0);
  t.deepEqual(resolved, []);
});

test('bad listen and bootstrap settings are all reported at once', async (t) => {
  const error = await t.throwsAsync(
    DhtDiscovery.start({ log: silentLogger() }, { listen: { host: '::1', port: 0 }, bootstrap: ['127.0.0.1', 'host:99999', '10.0.0.1:6881'], peerPort: 0 }),
    { instanceOf: ConfigError },
  );
  t.is(error?.problems.length, 4);
});

test('start fails, rather than hangs, when the address cannot be bound', async (t) => {
  t.timeout(5_000);
  // 192.0.2.1 is TEST-NET-1 (RFC 5737): on no interface of this machine, so bind fails with EADDRNOTAVAIL.
  await t.throwsAsync(DhtDiscovery.start({ log: silentLogger() }, { listen: { host: '192.0.2.1', port: 0 }, bootstrap: [], peerPort: 44_100 }), {
    message: /EADDRNOTAVAIL/,
  });
});
