/**
 * A tiny iperf for the shaping check, run inside namespaces by verify-shaping.ts:
 *
 *   node tcp-probe.js serve PORT CONNECTIONS   prints `listening`, then one JSON line per
 *                                              connection once all CONNECTIONS have ended:
 *                                              {"from":"10.213.0.10","bytes":…,"reads":…,
 *                                               "seconds":…,"firstMs":…,"lastMs":…,
 *                                               "cpuSeconds":…} (epoch ms; cpuSeconds: the
 *                                              server's CPU from the first byte on)
 *   node tcp-probe.js send HOST PORT SECONDS [START_AT]
 *                                              connects, waits until START_AT (epoch ms) so
 *                                              that several senders start together, sends
 *                                              zeros for SECONDS, prints {"sent":…,
 *                                              "cpuSeconds":…}, then resets the connection
 */
import { createServer, connect } from 'node:net';

/** A probe that is never told to stop still goes away. */
const PROBE_MAX_MS = 120_000;
const CHUNK = Buffer.alloc(64 * 1024);

const [mode, ...rest] = process.argv.slice(2);
setTimeout(() => process.exit(3), PROBE_MAX_MS).unref();

if (mode === 'serve') {
  const [port, connections] = rest.map(Number);
  if (port === undefined || connections === undefined) throw new Error('usage: serve PORT CONNECTIONS');
  const results: Array<{ from: string; bytes: number; reads: number; seconds: number; firstMs: number; lastMs: number; cpuSeconds?: number }> = [];
  // This process's CPU from the first byte to the last connection's end: what receiving costs a bare socket at this rate.
  let cpuAtFirstByte: NodeJS.CpuUsage | undefined;
  const server = createServer((socket) => {
    let bytes = 0;
    let reads = 0;
    let first = 0;
    let firstMs = 0;
    socket.on('data', (d: Buffer) => {
      if (first === 0) {
        first = performance.now();
        firstMs = Date.now();
        cpuAtFirstByte ??= process.cpuUsage();
      }
      bytes += d.length;
      reads++;
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      results.push({ from: socket.remoteAddress ?? '?', bytes, reads, seconds: (performance.now() - first) / 1000, firstMs, lastMs: Date.now() });
      if (results.length === connections) {
        const cpu = process.cpuUsage(cpuAtFirstByte);
        for (const r of results) r.cpuSeconds = (cpu.user + cpu.system) / 1e6;
        for (const r of results) process.stdout.write(`${JSON.stringify(r)}\n`);
        server.close();
      }
    });
  });
  server.listen(port, '0.0.0.0', () => process.stdout.write('listening\n'));
} else if (mode === 'send') {
  const [host, portText, secondsText, startAtText] = rest;
  const startAt = startAtText === undefined ? Date.now() : Number(startAtText);
  const end = startAt + Number(secondsText) * 1000;
  let sent = 0;
  let cpuAtStart: NodeJS.CpuUsage | undefined;
  const socket = connect(Number(portText), host ?? '', () => {
    const pump = (): void => {
      cpuAtStart ??= process.cpuUsage();
      while (Date.now() < end) {
        sent += CHUNK.length;
        if (!socket.write(CHUNK)) {
          socket.once('drain', pump);
          return;
        }
      }
      // What sending cost this process: bytes handed to the socket, and its CPU since the first write.
      const cpu = process.cpuUsage(cpuAtStart);
      process.stdout.write(`${JSON.stringify({ sent, cpuSeconds: (cpu.user + cpu.system) / 1e6 })}\n`);
      // A reset, not a close: a close waits until the kernel's send buffer (autotuned up
      // to 4 MiB) has crossed the link, 50 s for one of 16 flows sharing 10 Mbit/s. The
      // receiver counts what arrived until then.
      socket.resetAndDestroy();
    };
    setTimeout(pump, Math.max(0, startAt - Date.now()));
    // A drain may be due only after `end`: the pump then stops at once.
    setTimeout(() => socket.resetAndDestroy(), Math.max(0, end - Date.now()) + 1_000).unref();
  });
  socket.on('error', (err) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  });
} else {
  process.stderr.write('usage: tcp-probe.js serve PORT CONNECTIONS | send HOST PORT SECONDS\n');
  process.exit(2);
}
