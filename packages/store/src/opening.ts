import { createHash } from 'node:crypto';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isDigest, type Digest } from '@shoal/core';
import type { Catalog } from './catalog.js';
import { newEntry, type Entry } from './entry.js';
import { countBits, decodeRecord } from './record.js';
import { hashFileRange, type WholeDigest } from './whole-digest.js';

/**
 * Opening and recovery: loads every record, checks it against the files and
 * repairs what a crash left (a record whose file is missing or has the wrong
 * size is dropped, a file without a record deleted, a blob renamed into
 * blobs/ before its record said so is upgraded), optionally re-hashes complete
 * blobs, and restarts the completion of blobs whose every piece is verified.
 */
export async function loadCatalog(catalog: Catalog, whole: WholeDigest, verifyOnOpen: 'none' | 'complete'): Promise<void> {
  const { log, db } = catalog;
  await mkdir(catalog.blobDir, { recursive: true });
  await mkdir(catalog.partialDir, { recursive: true });
  await db.open();
  const drop: Array<{ key: string; why: string }> = [];
  const upgraded: Entry[] = [];
  const now = catalog.clock.now();
  for await (const [key, value] of db.iterator()) {
    if (!isDigest(key)) {
      drop.push({ key, why: 'key is not a digest' });
      continue;
    }
    const decoded = decodeRecord(value);
    if (typeof decoded === 'string') {
      drop.push({ key, why: decoded });
      continue;
    }
    const entry = newEntry(key, decoded.layout, decoded.lastAccessMs || now);
    decoded.pieceSha256.forEach((sha, i) => (entry.pieceSha256[i] = sha));
    entry.verified.set(decoded.verified);
    entry.verifiedCount = countBits(entry.verified, entry.layout.pieceCount);
    const size = entry.layout.blobSizeBytes;
    const blobSize = await fileSize(catalog.blobPath(key));
    if (decoded.complete) {
      if (blobSize !== size) {
        drop.push({ key, why: `complete blob file ${blobSize === undefined ? 'missing' : `has ${blobSize} bytes`}` });
        continue;
      }
      entry.complete = true;
      whole.markComplete(entry);
    } else {
      const partialSize = await fileSize(catalog.partialPath(key));
      if (partialSize !== size) {
        // Only verified files are ever renamed into blobs/: finding it there means we
        // crashed between the rename and the record update, and the blob is complete.
        if (blobSize === size && entry.verifiedCount === entry.layout.pieceCount) {
          entry.complete = true;
          whole.markComplete(entry);
          upgraded.push(entry);
        } else {
          drop.push({ key, why: `partial file ${partialSize === undefined ? 'missing' : `has ${partialSize} bytes`}` });
          continue;
        }
      }
    }
    if (entry.complete && verifyOnOpen === 'complete') {
      // Its size matched the record above, so the whole file is the range.
      const hash = createHash('sha256');
      await hashFileRange(catalog.blobPath(key), hash, 0, entry.layout.blobSizeBytes - 1, catalog.closing.signal);
      const actual = `sha256:${hash.digest('hex')}`;
      if (actual !== key) {
        drop.push({ key, why: `blob file hashes to ${actual}` });
        continue;
      }
    }
    catalog.hold(entry);
  }
  for (const { key, why } of drop) {
    log.warn({ digest: key, why }, 'dropping blob record at open');
    await db.del(key);
    if (isDigest(key)) {
      await rm(catalog.partialPath(key), { force: true });
      await rm(catalog.blobPath(key), { force: true });
    }
  }
  for (const entry of upgraded) {
    log.info({ digest: entry.digest }, 'blob found complete at open');
    await catalog.putRecord(entry);
  }
  await removeOrphans(catalog, catalog.partialDir, (d) => catalog.entries.get(d)?.complete === false);
  await removeOrphans(catalog, catalog.blobDir, (d) => catalog.entries.get(d)?.complete === true);
  // Crash leftovers with every piece verified but no completion: nothing else will trigger it.
  for (const entry of catalog.entries.values()) {
    if (!entry.complete && entry.verifiedCount === entry.layout.pieceCount) catalog.track(whole.kick(entry));
  }
}

/** Files without a record are leftovers of a crash between creating a file and writing its record, or between deleting them. */
async function removeOrphans(catalog: Catalog, dir: string, held: (digest: Digest) => boolean): Promise<void> {
  for (const name of await readdir(dir)) {
    const digest = `sha256:${name}`;
    if (isDigest(digest) && held(digest)) continue;
    catalog.log.warn({ file: join(dir, name) }, 'removing orphan file');
    await rm(join(dir, name), { force: true, recursive: true });
  }
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
