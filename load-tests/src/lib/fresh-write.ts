import { join } from 'node:path';
import { runChecked } from '@shoal/testkit';

const GiB = 1024 * 1024 * 1024;

/**
 * What this machine charges for writing `bytes` to a new file, in CPU-seconds per GiB: a
 * separate Node process writes it in 1 MiB positional writes, four in flight (as a store
 * writes pieces), then deletes it. Every Shoal store and every containerd writes what it
 * receives once, so this is part of each one's CPU count. On a VM that hands freed memory
 * back to its host, new page-cache pages cost far more than the copy into them.
 */
export async function freshFileWriteCpuPerGiB(dir: string, bytes: number): Promise<number> {
  const script = `
    import { open, unlink } from 'node:fs/promises';
    const [file, total] = [process.argv[1], Number(process.argv[2])];
    const chunk = Buffer.alloc(1 << 20, 7);
    const c0 = process.cpuUsage();
    const fh = await open(file, 'w');
    let at = 0;
    await Promise.all([0, 1, 2, 3].map(async () => {
      while (at < total) { const position = at; at += chunk.length; await fh.write(chunk, 0, Math.min(chunk.length, total - position), position); }
    }));
    await fh.close();
    const u = process.cpuUsage(c0);
    await unlink(file);
    process.stdout.write(String((u.user + u.system) / 1e6));`;
  const r = await runChecked(process.execPath, ['--input-type=module', '-e', script, join(dir, 'fresh-write.bin'), String(bytes)], { timeoutMs: 120_000 });
  return Number(r.stdout.trim()) / (bytes / GiB);
}
