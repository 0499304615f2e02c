import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { silentLogger } from '@shoal/core';
import { PieceStore } from '@shoal/store';

/** A real PieceStore in a fresh temp dir, closed and removed with the test. */
export async function tempStore(t: ExecutionContext, prefix: string): Promise<PieceStore> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const store = await PieceStore.open({ log: silentLogger() }, { dir });
  t.teardown(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  return store;
}
