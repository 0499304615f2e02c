// bench:swarm reports what each host's TCP sent again and how often it timed out, from the
// kernel's per-namespace counters; these tests read them from a fixture and from this machine.
import { readFile } from 'node:fs/promises';
import { createServer, connect, type AddressInfo } from 'node:net';
import test from 'ava';
import { describeTcp, parseTcpCounters, tcpSince, tcpSum } from '../netns/tcp-counters.js';

const SNMP = `Ip: Forwarding DefaultTTL InReceives
Ip: 1 64 1234
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
Tcp: 1 200 120000 -1 10 9 0 1 3 5000 6100 33 0 2 0
Udp: InDatagrams NoPorts
Udp: 7 0
`;
const NETSTAT = `TcpExt: SyncookiesSent TCPTimeouts TCPLossProbes TCPOrigDataSent
TcpExt: 0 12 4 5500
IpExt: InNoRoutes InOctets
IpExt: 0 99
`;

test('parses the counters out of /proc/net/snmp and /proc/net/netstat, in either order', (t) => {
  const want = { dataSegments: 5500, resentSegments: 33, timeouts: 12 };
  t.deepEqual(parseTcpCounters(SNMP + NETSTAT), want);
  t.deepEqual(parseTcpCounters(NETSTAT + SNMP), want);
});

test('a counter the kernel does not have is an error that names it', (t) => {
  const err = t.throws(() => parseTcpCounters(SNMP));
  t.regex(err.message, /TcpExt\.TCPOrigDataSent/);
});

test("this machine's counters are read, and sending over TCP moves them", async (t) => {
  const read = async (): Promise<ReturnType<typeof parseTcpCounters>> => parseTcpCounters((await readFile('/proc/net/snmp', 'utf8')) + (await readFile('/proc/net/netstat', 'utf8')));
  const before = await read();
  const server = createServer((s) => s.resume());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve, reject) => {
    const c = connect(port, '127.0.0.1', () => c.end(Buffer.alloc(4 * 1024 * 1024)));
    c.on('close', () => resolve());
    c.on('error', reject);
  });
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const sent = tcpSince(await read(), before);
  // 4 MiB in segments of at most 64 KiB (loopback's MSS).
  t.true(sent.dataSegments >= 64, `${sent.dataSegments} data segments`);
  t.true(sent.resentSegments >= 0 && sent.timeouts >= 0);
});

test('readings add up and describe themselves', (t) => {
  const a = { dataSegments: 1000, resentSegments: 30, timeouts: 1 };
  const b = { dataSegments: 3000, resentSegments: 10, timeouts: 0 };
  t.deepEqual(tcpSum([a, b]), { dataSegments: 4000, resentSegments: 40, timeouts: 1 });
  t.deepEqual(tcpSince(tcpSum([a, b]), a), b);
  t.is(describeTcp(tcpSum([a, b])), '1.0 % of data segments sent again, 1 retransmission timeout');
  t.is(describeTcp({ dataSegments: 0, resentSegments: 0, timeouts: 2 }), '0.0 % of data segments sent again, 2 retransmission timeouts');
});
