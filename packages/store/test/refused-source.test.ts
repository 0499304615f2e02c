import { Readable } from 'node:stream';
import test from 'ava';
import { BlobUnknownError } from '@shoal/core';
import { makeBlob, MiB, openStore } from './fixtures.js';

/**
 * Like an undici response body: destroyed before its end, it emits 'error'.
 * With nobody listening that is an uncaught exception (ava fails the file).
 */
function bodyLikeUndici(): Readable {
  return new Readable({
    read() {},
    destroy(err, callback) {
      callback(err ?? new Error('Request aborted'));
    },
  });
}

test('a write refused before any byte is read drops its source without an unhandled error', async (t) => {
  const { store } = await openStore(t);
  const blob = makeBlob(2 * MiB);
  // Not begun: both ways in are refused at once.
  await t.throwsAsync(store.writePiece(blob.digest, 0, bodyLikeUndici()), { instanceOf: BlobUnknownError });
  await t.throwsAsync(store.ingest(blob.digest, 0, bodyLikeUndici(), { signal: AbortSignal.abort(new Error('cancelled')) }), { message: 'cancelled' });
  await new Promise((resolve) => setTimeout(resolve, 50));
});
