import test from 'ava';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, makeTempDir, removeTempDir, spawnProcess, waitFor } from '../src/index.js';

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
