import { spawn } from 'node:child_process';
import test from 'ava';
import { digestOf, silentLogger } from '@shoal/core';
import { DhtDiscovery } from '../src/discovery/index.js';

function udpHandles(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'UDPWrap').length;
}

test('close() releases the sockets', async (t) => {
  t.timeout(15_000);
  const baseline = udpHandles();
  const log = silentLogger();
  const first = await DhtDiscovery.start({ log }, { listen: { host: '127.0.0.1', port: 0 }, bootstrap: [], peerPort: 45_000 });
  const second = await DhtDiscovery.start({ log }, { listen: { host: '127.0.0.1', port: 0 }, bootstrap: [`127.0.0.1:${first.address.port}`], peerPort: 45_001 });
  t.is(udpHandles(), baseline + 2);
  const digest = digestOf('closing');
  second.announce(digest);
  // A lookup still open at close() resolves rather than hanging.
  const open = first.lookup(digestOf('nobody'), { timeoutMs: 10_000 });
  await Promise.all([first.close(), second.close()]);
  t.deepEqual(await open, []);
  // libuv frees a closed handle a loop turn after dgram's 'close' event.
  for (let i = 0; i < 20 && udpHandles() > baseline; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  t.is(udpHandles(), baseline);
});

// The real proof of no leftover handle: a process that starts a swarm, uses it,
// closes it and must then exit by itself.
test('a process that closes its DHT nodes exits by itself', async (t) => {
  t.timeout(15_000);
  const discovery = new URL('../src/discovery/index.js', import.meta.url).href;
  const core = import.meta.resolve('@shoal/core');
  const script = `
    const { DhtDiscovery } = await import(${JSON.stringify(discovery)});
    const { digestOf, silentLogger } = await import(${JSON.stringify(core)});
    const log = silentLogger();
    const first = await DhtDiscovery.start({ log }, { listen: { host: '127.0.0.1', port: 0 }, bootstrap: [], peerPort: 45100 });
    const nodes = [first];
    for (let i = 1; i < 4; i++) nodes.push(await DhtDiscovery.start({ log }, { listen: { host: '127.0.0.1', port: 0 }, bootstrap: ['127.0.0.1:' + first.address.port], peerPort: 45100 + i }));
    const digest = digestOf('exit');
    nodes[1].announce(digest);
    let urls = [];
    for (let i = 0; i < 50 && urls.length === 0; i++) urls = await nodes[2].lookup(digest, { timeoutMs: 1000 });
    nodes[3].lookup(digestOf('unfinished'), { timeoutMs: 60000 });
    await Promise.all(nodes.map((node) => node.close()));
    console.log(JSON.stringify(urls));
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (exitCode) => resolve(exitCode)));
  clearTimeout(killer);
  t.is(code, 0, 'exited on its own');
  t.deepEqual(JSON.parse(stdout.trim()) as unknown, ['http://127.0.0.1:45101']);
});
