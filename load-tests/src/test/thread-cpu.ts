import { readFileSync } from 'node:fs';

/** The calling thread's CPU so far, in seconds (utime + stime of /proc/thread-self/stat). */
function ownCpuSeconds(): number {
  const stat = readFileSync('/proc/thread-self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Keeps the calling thread busy until it has spent `seconds` of CPU (not of wall time: the machine may be busy), or 30 s have passed. */
export function spinThreadCpu(seconds: number): void {
  const start = ownCpuSeconds();
  const deadline = Date.now() + 30_000;
  while (ownCpuSeconds() - start < seconds && Date.now() < deadline) {
    for (let i = 0; i < 1e5; i++) Math.sqrt(i);
  }
}
