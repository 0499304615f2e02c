import { PassThrough } from 'node:stream';
import test from 'ava';
import { DigestMismatchError, PieceUnavailableError, type Digest } from '@shoal/core';
import { DEFAULT_FRESH_PIECE_BYTES } from '../src/index.js';
import { MiB, makeBlob, openStore, openStoreWith, piece, readAll, streamOf } from './fixtures.js';

/** Resolves after pending I/O and timers of this turn have run. */
const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));

async function ingesting(t: Parameters<typeof openStore>[0]) {
  const { store } = await openStoreWith(t, { freshPieceBytes: DEFAULT_FRESH_PIECE_BYTES });
  const blob = makeBlob(3 * MiB);
  const source = new PassThrough();
  const done = store.ingest(blob.digest, blob.data.length, source);
  done.catch(() => undefined);
  // The ingest begins the blob first (its record and file); the supernode asks only about blobs begun.
  while (store.get(blob.digest) === undefined) await tick();
  return { store, blob, source, done };
}

/** The cut-through reader of piece `index`, once its first bytes have come (fails the test when there is none). */
async function tailOf(store: Awaited<ReturnType<typeof ingesting>>['store'], digest: Digest, index: number) {
  await store.waitForPieceOrIngest(digest, index);
  const reader = store.openIngestingPiece(digest, index);
  if (reader === undefined) throw new Error(`no cut-through reader for piece ${index}, which is being received`);
  return reader;
}

test('a cut-through reader gets a piece\'s bytes while they arrive, before it is verified, and its hash at the end', async (t) => {
  const { store, blob, source, done } = await ingesting(t);
  const half = MiB / 2;
  source.write(blob.data.subarray(0, MiB + half));
  const reader = await tailOf(store, blob.digest, 1);
  await tick();

  const early = Buffer.alloc(MiB);
  const got = await reader.read(early);
  t.true(got > 0 && got <= half, `read ${got} bytes of the ${half} that arrived`);
  t.true(early.subarray(0, got).equals(piece(blob, 1).subarray(0, got)));
  t.false(store.hasPiece(blob.digest, 1), 'the bytes came before the piece was verified');
  t.is(reader.sha256, undefined);

  source.end(blob.data.subarray(MiB + half));
  const rest = await readAll(reader);
  t.true(Buffer.concat([early.subarray(0, got), rest]).equals(piece(blob, 1)));
  t.is(reader.sha256, blob.pieceSha256[1]);
  reader.close();
  await done;
  t.true(store.get(blob.digest)?.complete);
});

test('a reader that lags behind the ingest reads the rest of the piece verified from the store', async (t) => {
  const { store, blob, source, done } = await ingesting(t);
  source.write(blob.data.subarray(0, 100_000));
  const reader = await tailOf(store, blob.digest, 0);
  source.end(blob.data.subarray(100_000));
  await done;
  t.true((await readAll(reader)).equals(piece(blob, 0)));
  t.is(reader.sha256, blob.pieceSha256[0]);
  reader.close();
});

test('a failed ingest fails the cut-through reader of the piece it was receiving', async (t) => {
  const { store, blob, source, done } = await ingesting(t);
  source.write(blob.data.subarray(0, 200_000));
  const reader = await tailOf(store, blob.digest, 0);
  await tick();
  const first = await reader.read(Buffer.alloc(MiB));
  t.true(first > 0);
  const pending = reader.read(Buffer.alloc(MiB));
  source.destroy(new Error('registry connection reset'));
  await t.throwsAsync(done);
  await t.throwsAsync(pending, { instanceOf: PieceUnavailableError });
  reader.close();
});

test('there is no cut-through reader for a piece not being received, or without the fresh-piece cache', async (t) => {
  const { store, blob, source, done } = await ingesting(t);
  t.is(store.openIngestingPiece(blob.digest, 0), undefined, 'no byte has come yet');
  source.write(blob.data.subarray(0, MiB + 10));
  await store.waitForPiece(blob.digest, 0);
  await store.waitForPieceOrIngest(blob.digest, 1);
  t.is(store.openIngestingPiece(blob.digest, 0), undefined, 'piece 0 is verified: read it as usual');
  t.is(store.openIngestingPiece(blob.digest, 2), undefined, 'piece 2 has not begun');
  t.not(store.openIngestingPiece(blob.digest, 1), undefined);
  source.end(blob.data.subarray(MiB + 10));
  await done;

  const plain = await openStore(t);
  const other = makeBlob(2 * MiB);
  const src = new PassThrough();
  const ingest = plain.store.ingest(other.digest, other.data.length, src);
  src.write(other.data.subarray(0, 1000));
  await tick();
  t.is(plain.store.openIngestingPiece(other.digest, 0), undefined, 'without the cache the bytes go straight to disk');
  src.end(other.data.subarray(1000));
  await ingest;
});

test('writePiece takes a hash that comes after the bytes, and refuses the piece when none or a wrong one comes', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(3 * MiB);
  await store.begin(blob.digest, blob.data.length);

  await store.writePiece(blob.digest, 0, streamOf(piece(blob, 0)), { expectedSha256: () => blob.pieceSha256[0] });
  t.true(store.hasPiece(blob.digest, 0));

  let asked = false;
  const source = streamOf(piece(blob, 1));
  const late = (): string | undefined => {
    asked = true;
    t.true(source.readableEnded, 'asked only once the bytes have ended');
    return undefined;
  };
  await t.throwsAsync(store.writePiece(blob.digest, 1, source, { expectedSha256: late }), { instanceOf: DigestMismatchError });
  t.true(asked);
  await t.throwsAsync(store.writePiece(blob.digest, 1, streamOf(piece(blob, 1)), { expectedSha256: () => blob.pieceSha256[2] }), { instanceOf: DigestMismatchError });
  t.false(store.hasPiece(blob.digest, 1));
});

test('a piece a writePiece is receiving is open to cut-through readers, announced as arriving, and ends once it matched', async (t) => {
  const { store } = await openStoreWith(t, { freshPieceBytes: DEFAULT_FRESH_PIECE_BYTES });
  const blob = makeBlob(3 * MiB);
  await store.begin(blob.digest, blob.data.length);
  const arriving: number[] = [];
  store.on('arriving', (_digest, index) => arriving.push(index));
  const source = new PassThrough();
  const write = store.writePiece(blob.digest, 2, source, { expectedSha256: blob.pieceSha256[2] });
  source.write(piece(blob, 2).subarray(0, 300_000));
  const reader = await tailOf(store, blob.digest, 2);
  t.deepEqual(arriving, [2]);
  await tick();
  const early = Buffer.alloc(MiB);
  const got = await reader.read(early);
  t.true(got > 0 && got <= 300_000, `read ${got} bytes of the 300000 that arrived`);
  t.false(store.hasPiece(blob.digest, 2), 'the bytes came before the piece was verified');

  source.end(piece(blob, 2).subarray(300_000));
  const rest = await readAll(reader);
  t.true(Buffer.concat([early.subarray(0, got), rest]).equals(piece(blob, 2)));
  t.is(reader.sha256, blob.pieceSha256[2]);
  reader.close();
  await write;
  t.is(store.openIngestingPiece(blob.digest, 2), undefined, 'verified: read as any piece');
});

test('a writePiece whose bytes do not match fails its cut-through readers, never ends them, and says the arrival failed', async (t) => {
  const { store } = await openStoreWith(t, { freshPieceBytes: DEFAULT_FRESH_PIECE_BYTES });
  const blob = makeBlob(2 * MiB);
  await store.begin(blob.digest, blob.data.length);
  const failed: number[] = [];
  store.on('arrivalFailed', (_digest, index) => failed.push(index));
  const bad = Buffer.from(piece(blob, 0));
  bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1;
  const source = new PassThrough();
  const write = store.writePiece(blob.digest, 0, source, { expectedSha256: blob.pieceSha256[0] });
  write.catch(() => undefined);
  source.write(bad.subarray(0, 1000));
  const reader = await tailOf(store, blob.digest, 0);
  source.end(bad.subarray(1000));
  await t.throwsAsync(write, { instanceOf: DigestMismatchError });
  // Everything but the end may have been handed out; the end (a read of 0) never comes.
  await t.throwsAsync(readAll(reader), { instanceOf: PieceUnavailableError });
  reader.close();
  t.deepEqual(failed, [0]);
  t.is(store.openIngestingPiece(blob.digest, 0), undefined);

  // A later write of the right bytes is a new arrival, and succeeds.
  await store.writePiece(blob.digest, 0, streamOf(piece(blob, 0)), { expectedSha256: blob.pieceSha256[0] });
  t.true(store.hasPiece(blob.digest, 0));
  t.deepEqual(failed, [0]);
});

test('writePiece waits for a hash still being asked for, and refuses the piece when the answer is wrong or fails', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(3 * MiB);
  await store.begin(blob.digest, blob.data.length);
  let answer: (sha: string) => void = () => undefined;
  const asked = new Promise<string>((resolve) => (answer = resolve));
  const write = store.writePiece(blob.digest, 0, streamOf(piece(blob, 0)), { expectedSha256: () => asked });
  await tick();
  t.false(store.hasPiece(blob.digest, 0), 'not stored before the hash came');
  answer(blob.pieceSha256[0] as string);
  await write;
  t.true(store.hasPiece(blob.digest, 0));

  await t.throwsAsync(store.writePiece(blob.digest, 1, streamOf(piece(blob, 1)), { expectedSha256: async () => blob.pieceSha256[2] }), { instanceOf: DigestMismatchError });
  await t.throwsAsync(store.writePiece(blob.digest, 1, streamOf(piece(blob, 1)), { expectedSha256: () => Promise.reject(new Error('supernode gone')) }), { message: 'supernode gone' });
  t.false(store.hasPiece(blob.digest, 1));
});
