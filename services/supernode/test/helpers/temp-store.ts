import type { ExecutionContext } from 'ava';
import { silentLogger } from '@shoal/core';
import { PieceStore } from '@shoal/store';
import { makeTempDir, removeTempDir } from '@shoal/testkit';

/** A real PieceStore in a fresh temp dir (`shoal-<prefix>-…`), closed and removed with the test. */
export async function tempStore(t: ExecutionContext, prefix: string): Promise<PieceStore> {
  const dir = await makeTempDir(prefix);
  const store = await PieceStore.open({ log: silentLogger() }, { dir });
  t.teardown(async () => {
    await store.close();
    await removeTempDir(dir);
  });
  return store;
}
