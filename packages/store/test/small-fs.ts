import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface SmallFs {
  dir: string;
  kind: 'ext4 on a loop device' | 'tmpfs';
  unmount(): Promise<void>;
}

/**
 * A real, small filesystem so that ENOSPC comes from the kernel: ext4 on a
 * loop device, else tmpfs. Needs root (and CAP_SYS_ADMIN in a container);
 * undefined when neither can be mounted.
 */
export async function mountSmallFs(sizeMiB: number): Promise<SmallFs | undefined> {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return undefined;
  const base = await mkdtemp(join(tmpdir(), 'shoal-smallfs-'));
  const dir = join(base, 'mnt');
  await mkdir(dir);
  const image = join(base, 'fs.img');
  const unmount = async (): Promise<void> => {
    await run('umount', [dir]).catch(() => run('umount', ['-l', dir]).catch(() => undefined));
    await rm(base, { recursive: true, force: true });
  };
  try {
    await rm(image, { force: true });
    await run('truncate', ['-s', `${sizeMiB}M`, image]).catch(() => truncate(image, sizeMiB * 1024 * 1024));
    await run('mkfs.ext4', ['-q', '-F', image]);
    await run('mount', ['-o', 'loop', image, dir]);
    return { dir, kind: 'ext4 on a loop device', unmount };
  } catch {
    // no loop devices here (a container, usually)
  }
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', dir]);
    return { dir, kind: 'tmpfs', unmount };
  } catch {
    await rm(base, { recursive: true, force: true });
    return undefined;
  }
}
