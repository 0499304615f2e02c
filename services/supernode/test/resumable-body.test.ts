import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import test from 'ava';
import { ResumableBody } from '../src/resumable-body.js';

const BLOB = randomBytes(1_000_000);

/** A body that sends `bytes` from `from` in 10,000-byte chunks, then fails (or ends, when `fail` is false). */
function bodyOf(bytes: Buffer, from: number, to: number, fail: boolean): Readable {
  let at = from;
  return new Readable({
    read() {
      if (at >= to) {
        if (fail) this.destroy(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
        else this.push(null);
        return;
      }
      const end = Math.min(to, at + 10_000);
      this.push(bytes.subarray(at, end));
      at = end;
    },
  });
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

test('a body whose connection breaks goes on from where it was, and the bytes come out whole and in order', async (t) => {
  const offsets: number[] = [];
  const body = new ResumableBody(
    bodyOf(BLOB, 0, 300_000, true),
    BLOB.length,
    async (offset) => {
      offsets.push(offset);
      // The second connection breaks too; the third one ends the blob.
      return { body: bodyOf(BLOB, offset, offsets.length === 1 ? 700_000 : BLOB.length, offsets.length === 1), skipBytes: 0 };
    },
    { maxResumesWithoutProgress: 3, progressBytes: 100_000 },
  );
  t.true((await readAll(body)).equals(BLOB));
  t.deepEqual(offsets, [300_000, 700_000]);
});

test('a registry that ignores Range sends the whole blob again, and the bytes already passed on are dropped', async (t) => {
  const body = new ResumableBody(bodyOf(BLOB, 0, 420_000, true), BLOB.length, async (offset) => ({ body: bodyOf(BLOB, 0, BLOB.length, false), skipBytes: offset }), {
    maxResumesWithoutProgress: 3,
    progressBytes: 100_000,
  });
  t.true((await readAll(body)).equals(BLOB));
});

test('a body cut short without an error is resumed as well', async (t) => {
  const body = new ResumableBody(bodyOf(BLOB, 0, 500_000, false), BLOB.length, async (offset) => ({ body: bodyOf(BLOB, offset, BLOB.length, false), skipBytes: 0 }), {
    maxResumesWithoutProgress: 3,
    progressBytes: 100_000,
  });
  t.true((await readAll(body)).equals(BLOB));
});

test('connections that keep breaking without progress fail the body after the last allowed resume', async (t) => {
  let reopened = 0;
  const body = new ResumableBody(
    bodyOf(BLOB, 0, 200_000, true),
    BLOB.length,
    async (offset) => {
      reopened++;
      return { body: bodyOf(BLOB, offset, offset + 10_000, true), skipBytes: 0 };
    },
    { maxResumesWithoutProgress: 3, progressBytes: 100_000 },
  );
  const err = await t.throwsAsync(readAll(body));
  t.regex(err?.message ?? '', /socket hang up/);
  t.is(reopened, 3);
});

test('a failed reopen fails the body with the registry\'s answer', async (t) => {
  const body = new ResumableBody(bodyOf(BLOB, 0, 200_000, true), BLOB.length, async () => Promise.reject(new Error('registry answered 503')), {
    maxResumesWithoutProgress: 3,
    progressBytes: 100_000,
  });
  await t.throwsAsync(readAll(body), { message: 'registry answered 503' });
});

test('restart moves a moving body to a new connection from where it is; the old one is closed', async (t) => {
  const first = bodyOf(BLOB, 0, BLOB.length, false);
  const offsets: number[] = [];
  const body = new ResumableBody(first, BLOB.length, async (offset) => {
    offsets.push(offset);
    return { body: bodyOf(BLOB, offset, BLOB.length, false), skipBytes: 0 };
  }, { maxResumesWithoutProgress: 3, progressBytes: 100_000 });
  const chunks: Buffer[] = [];
  let restarted = false;
  for await (const chunk of body) {
    chunks.push(chunk as Buffer);
    if (!restarted && body.bytesDelivered >= 250_000) {
      restarted = body.restart('starved');
      t.false(body.restart('again'), 'no second restart while the new connection opens');
    }
  }
  t.true(restarted);
  t.true(first.destroyed);
  t.is(offsets.length, 1);
  t.true(Buffer.concat(chunks).equals(BLOB));
});
