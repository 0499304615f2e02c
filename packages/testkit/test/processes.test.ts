import test from 'ava';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer } from 'node:net';
import { deadPort, freePort, groupListensOn, makeTempDir, removeTempDir, spawnProcess, waitFor } from '../src/index.js';

/** Running (an orphaned zombie waiting for init to reap it counts as dead). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

test('stop() escalates to SIGKILL and takes the whole process group', async (t) => {
  const logDir = await makeTempDir('processes-test');
  t.teardown(() => removeTempDir(logDir));
  // The shell ignores SIGTERM and has a child that writes its pid.
  const proc = await spawnProcess({ name: 'stubborn', command: 'sh', args: ['-c', 'trap "" TERM; sleep 100 & echo $!; wait'], logDir });
  t.teardown(() => proc.stop());
  let childPid = 0;
  await waitFor(async () => (childPid = Number.parseInt(await proc.stdout(), 10)) > 0, { process: proc, description: 'child pid' });
  t.true(alive(childPid));
  const exit = await proc.stop({ timeoutMs: 200 });
  t.is(exit.signal, 'SIGKILL');
  await sleep(100);
  t.false(alive(childPid));
});

test('waitFor fails fast, with the log tail, when the process exits', async (t) => {
  const logDir = await makeTempDir('processes-test');
  t.teardown(() => removeTempDir(logDir));
  const proc = await spawnProcess({ name: 'dies', command: 'sh', args: ['-c', 'echo boom >&2; exit 3'], logDir });
  t.teardown(() => proc.stop());
  const error = await t.throwsAsync(waitFor(() => false, { process: proc, timeoutMs: 10_000 }));
  t.regex(error?.message ?? '', /code 3[\s\S]*boom/);
});

test('freePort gives a bindable port', async (t) => {
  const port = await freePort();
  t.true(port > 0 && port < 65536);
});

test('deadPort gives a port that refuses connections, below the range freePort draws from', async (t) => {
  const port = await deadPort();
  const ephemeralLow = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  t.true(port >= 1024 && port < ephemeralLow, `${port} below ${ephemeralLow}`);
  const refused = await fetch(`http://127.0.0.1:${port}/`).then(
    () => undefined,
    (err: Error & { cause?: { code?: string } }) => err.cause?.code,
  );
  t.is(refused, 'ECONNREFUSED');
});

// Two servers on one port cannot both be bound, but both can look up: the check tells
// a spawned server's own listener from another process's on the same port.
test('groupListensOn: true for the child group\'s own listener, false for a port another process holds', async (t) => {
  const logDir = await makeTempDir('processes-test');
  t.teardown(() => removeTempDir(logDir));
  const port = await freePort();
  const server = `require('node:net').createServer().listen(${port}, '127.0.0.1', () => console.log('listening'))`;
  const proc = await spawnProcess({ name: 'listener', command: process.execPath, args: ['-e', server], logDir });
  t.teardown(() => proc.stop());
  await waitFor(async () => (await proc.stdout()).includes('listening'), { process: proc, description: 'the child listening' });
  t.true(await groupListensOn(proc.pid, port));

  const ours = createServer();
  await new Promise<void>((resolve) => ours.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => ours.close(() => resolve())));
  const ourPort = (ours.address() as { port: number }).port;
  t.false(await groupListensOn(proc.pid, ourPort), 'a port this test process holds is not the child\'s');
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const ourGroup = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  t.true(await groupListensOn(ourGroup, ourPort), 'and it is found in the group that holds it');
});
