import { readFileSync } from 'node:fs';
import { parseStat } from '../netns/cpu.js';

/** The calling thread's CPU so far, in seconds. */
function ownCpuSeconds(): number {
  return parseStat(readFileSync('/proc/thread-self/stat', 'utf8')).seconds;
}

/** Keeps the calling thread busy until it has spent `seconds` of CPU (not of wall time: the machine may be busy), or 30 s have passed. */
export function spinThreadCpu(seconds: number): void {
  const start = ownCpuSeconds();
  const deadline = Date.now() + 30_000;
  while (ownCpuSeconds() - start < seconds && Date.now() < deadline) {
    for (let i = 0; i < 1e5; i++) Math.sqrt(i);
  }
}
