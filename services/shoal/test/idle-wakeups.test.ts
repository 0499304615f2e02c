/**
 * Regression: prom-client's event-loop-lag monitor sampled every 10 ms by default, so an
 * idle `shoal supernode` or `shoal node` woke 100 times a second; 16 idle node agents used
 * 7-8 % of a core (`npm run bench:idle`). An idle service now wakes a few times a second.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const SHOAL = fileURLToPath(new URL('../../bin/shoal.js', import.meta.url));
/** Far below the 100/s of a 10 ms timer, far above an idle loop's heartbeats and GC. */
const MAX_WAKEUPS_PER_SECOND = 30;

async function voluntarySwitches(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^voluntary_ctxt_switches:\s+(\d+)$/m.exec(status)?.[1]);
}

test('an idle supernode wakes its main thread a few times a second, not 100', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-idle-'));
  const child = spawn(process.execPath, [SHOAL, 'supernode'], {
    env: { PATH: process.env.PATH ?? '', SHOAL_LISTEN: '127.0.0.1:0', SHOAL_DATA: join(dir, 'data'), SHOAL_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    const pid = child.pid as number;
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString('utf8');
        if (/listening/i.test(out)) resolve();
      });
      child.once('exit', (code) => reject(new Error(`shoal supernode exited ${String(code)}: ${out.slice(-2000)}`)));
    });
    // Start-up work (JIT, the first GCs) is over within a second or two of listening.
    await new Promise((r) => setTimeout(r, 2_000));
    const a = await voluntarySwitches(pid);
    const seconds = 3;
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const perSecond = ((await voluntarySwitches(pid)) - a) / seconds;
    t.log(`idle supernode: ${perSecond.toFixed(1)} wakeups/s`);
    t.true(perSecond < MAX_WAKEUPS_PER_SECOND, `${perSecond.toFixed(1)} wakeups/s`);
  } finally {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
});
