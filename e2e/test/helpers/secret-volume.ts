import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A Secret volume as kubelet lays it out: `token` → `..data/token`, `..data` → a versioned
 * dir, swapped atomically on every update. `write` takes the file's whole text (one token a
 * line; a newline is added).
 */
export async function secretVolume(dir: string, text: string): Promise<{ file: string; write(text: string): Promise<void> }> {
  await mkdir(dir, { recursive: true });
  let version = 0;
  const write = async (value: string): Promise<void> => {
    const versioned = `..v${++version}`;
    await mkdir(join(dir, versioned));
    await writeFile(join(dir, versioned, 'token'), `${value}\n`);
    await symlink(versioned, join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data')); // atomic swap, as kubelet does
  };
  await write(text);
  await symlink('..data/token', join(dir, 'token'));
  return { file: join(dir, 'token'), write };
}
