import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { PieceStore } from '../src/index.js';
import { blobFile, partialFile, recordingLogger, tempDir, readAll } from './fixtures.js';

const CHILD = fileURLToPath(new URL('./crash-child.js', import.meta.url));
const ROUNDS = 10;

/** Starts the child on `dir`, lets it work for a random moment, and kills it with SIGKILL. */
async function killAtRandom(dir: string): Promise<number> {
  const child = spawn(process.execPath, [CHILD, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(child, 'exit');
  let output = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('ready\n')) resolve();
    });
    void exited.then(() => reject(new Error(`child exited before it was ready: ${output}`)));
  });
  const afterMs = Math.floor(Math.random() * 700);
  await sleep(afterMs);
  child.kill('SIGKILL');
  await exited;
  return afterMs;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

test('after SIGKILL at random moments, the store reopens consistent: only verified bytes, no orphans', async (t) => {
  t.timeout(90_000);
  const dir = await tempDir(t);
  let pieces = 0;
  let complete = 0;
  let repaired = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const afterMs = await killAtRandom(dir);
    const { log, lines } = recordingLogger();
    const store = await PieceStore.open({ log }, { dir });
    try {
      // Blobs found with every piece verified complete in the background after open.
      for (const blob of store.list()) {
        const record = store.get(blob.digest);
        if (record !== undefined && !record.complete && record.verifiedCount === record.layout.pieceCount) {
          await store.waitForComplete(blob.digest).catch(() => undefined);
        }
      }
      const held = store.list();
      for (const { digest } of held) {
        const record = store.get(digest);
        if (record === undefined) continue;
        const size = (await stat(record.complete ? blobFile(dir, digest) : partialFile(dir, digest))).size;
        t.is(size, record.layout.blobSizeBytes, `file size of ${digest}`);
        for (let index = 0; index < record.layout.pieceCount; index++) {
          if (!store.hasPiece(digest, index)) continue;
          const data = await readAll(store.openPieceReader(digest, index));
          t.is(sha256(data), String(record.pieceSha256[index]), `piece ${index} of ${digest}`);
          pieces++;
        }
        if (record.complete) {
          const data = await readAll(store.openReader(digest));
          t.is(`sha256:${sha256(data)}`, digest);
          complete++;
        }
      }
      const partialNames = (await readdir(join(dir, 'partial', 'sha256'))).sort();
      const blobNames = (await readdir(join(dir, 'blobs', 'sha256'))).sort();
      t.deepEqual(partialNames, held.filter((b) => !b.complete).map((b) => b.digest.slice(7)).sort(), 'no orphan partial files');
      t.deepEqual(blobNames, held.filter((b) => b.complete).map((b) => b.digest.slice(7)).sort(), 'no orphan blob files');
      const fixes = lines.filter((l) => l.msg === 'dropping blob record at open' || l.msg === 'removing orphan file' || l.msg === 'blob found complete at open');
      repaired += fixes.length;
      t.log(`round ${round}: killed after ${afterMs} ms; ${held.length} blobs held; repaired at open: ${fixes.map((l) => `${l.msg ?? ''} (${String(l.fields.why ?? l.fields.file ?? l.fields.digest)})`).join(', ') || 'nothing'}`);
    } finally {
      await store.close();
    }
  }
  t.log(`checked ${pieces} pieces and ${complete} complete blobs over ${ROUNDS} kills; ${repaired} repairs at open`);
  t.true(pieces > 0);
});
