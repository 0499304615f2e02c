// The benchmarks split a process's CPU into its main thread and the rest; both readings
// come from /proc, and the main thread's leaves out what other threads spent.
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import test from 'ava';
import { cpuInWindow, mainThreadCpuSeconds, parseProcStatCpu, processCpuSeconds } from '../netns/cpu.js';
import { spinThreadCpu } from './thread-cpu.js';

const SPIN_MODULE = new URL('./thread-cpu.js', import.meta.url).href;

test('mainThreadCpuSeconds counts the main thread, not the other threads of the process', async (t) => {
  const main0 = await mainThreadCpuSeconds(process.pid);
  const all0 = await processCpuSeconds(process.pid);
  await new Promise<void>((resolve, reject) => {
    const worker = new Worker(`import(${JSON.stringify(SPIN_MODULE)}).then((m) => m.spinThreadCpu(0.4))`, { eval: true });
    worker.once('exit', () => resolve());
    worker.once('error', reject);
  });
  spinThreadCpu(0.4);
  const main = (await mainThreadCpuSeconds(process.pid)) - main0;
  const all = (await processCpuSeconds(process.pid)) - all0;
  t.true(main >= 0.4, `main thread: ${main} s`);
  t.true(all - main >= 0.4, `the other threads (the worker's 0.4 s): ${all - main} s; main ${main} s`);
});

test('a process that is gone reads as 0', async (t) => {
  t.is(await mainThreadCpuSeconds(2 ** 22 + 1), 0);
});

test('cpuInWindow takes the samples that ended inside the window, saturated from 95 % busy', (t) => {
  const samples = [
    { atMs: 500, busy: 0.2 },
    { atMs: 1000, busy: 0.96 },
    { atMs: 1500, busy: 1 },
    { atMs: 2000, busy: 0.5 },
  ];
  const tail = cpuInWindow(samples, 1000, 2000);
  t.is(tail.samples, 3);
  t.is(tail.saturatedShare, 2 / 3);
  t.true(Math.abs(tail.meanBusy - (0.96 + 1 + 0.5) / 3) < 1e-9);
  t.deepEqual(cpuInWindow(samples, 2500, 3000), { samples: 0, meanBusy: 0, saturatedShare: 0 });
});

test('parseProcStatCpu reads the machine line of /proc/stat, steal counted as busy and kept apart', (t) => {
  const text = 'cpu  100 5 40 800 20 3 7 25 0 0\ncpu0 50 2 20 400 10 1 3 12 0 0\nintr 1 2 3\n';
  // busy: user + nice + system + irq + softirq + steal; in all: busy + idle + iowait.
  t.deepEqual(parseProcStatCpu(text), { busy: 180, total: 1000, softirq: 7, irq: 3, iowait: 20, steal: 25 });
});

test('parseProcStatCpu of this machine: steal within busy, busy within the total', (t) => {
  const ticks = parseProcStatCpu(readFileSync('/proc/stat', 'utf8'));
  t.true(ticks.total > 0);
  t.true(ticks.steal >= 0 && ticks.steal <= ticks.busy && ticks.busy <= ticks.total, JSON.stringify(ticks));
});
