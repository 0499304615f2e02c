import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import test from 'ava';
import {
  DigestInvalidError,
  DigestMismatchError,
  DigestVerifier,
  SizeMismatchError,
  digestHex,
  digestOf,
  isDigest,
  parseDigest,
  sha256Hex,
} from '../src/index.js';

const HEX = 'a'.repeat(64);

test('parseDigest accepts sha256 with 64 lowercase hex characters', (t) => {
  t.is<string, string>(parseDigest(`sha256:${HEX}`), `sha256:${HEX}`);
  const d = digestOf('hello');
  t.is(parseDigest(d), d);
  t.is(digestHex(d), sha256Hex('hello'));
  t.true(isDigest(d));
});

test('parseDigest rejects malformed digests with DigestInvalidError', (t) => {
  for (const text of [
    '',
    'sha256:',
    `sha256:${HEX.slice(1)}`,
    `sha256:${HEX}0`,
    `sha256:${HEX.toUpperCase()}`,
    `SHA256:${HEX}`,
    `sha256:${HEX}\n`,
    ` sha256:${HEX}`,
    `sha256:${'g'.repeat(64)}`,
    `sha256:../../${HEX}`,
    HEX,
    `sha512:${'../'.repeat(100)}`,
  ]) {
    t.throws(() => parseDigest(text), { instanceOf: DigestInvalidError }, JSON.stringify(text));
    t.false(isDigest(text));
  }
});

test('parseDigest rejects other well-formed algorithms as not supported', (t) => {
  t.throws(() => parseDigest(`sha512:${'b'.repeat(128)}`), { instanceOf: DigestInvalidError, message: /sha512 is not supported/ });
  t.throws(() => parseDigest('blake3+x:abc'), { instanceOf: DigestInvalidError, message: /not supported/ });
});

async function verify(data: Buffer, verifier: DigestVerifier): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from([data.subarray(0, 3), data.subarray(3)]),
    verifier,
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        out.push(chunk);
        done();
      },
    }),
  );
  return Buffer.concat(out);
}

test('DigestVerifier passes the bytes through when digest and size match', async (t) => {
  const data = Buffer.from('the quick brown fox');
  t.true((await verify(data, new DigestVerifier(digestOf(data), data.length))).equals(data));
  t.true((await verify(data, new DigestVerifier(digestOf(data)))).equals(data));
});

test('DigestVerifier fails on a digest mismatch', async (t) => {
  const data = Buffer.from('the quick brown fox');
  await t.throwsAsync(verify(data, new DigestVerifier(digestOf('other'), data.length)), { instanceOf: DigestMismatchError });
  await t.throwsAsync(verify(data, new DigestVerifier(digestOf('other'))), { instanceOf: DigestMismatchError });
});

test('DigestVerifier fails when there are too many or too few bytes', async (t) => {
  const data = Buffer.from('the quick brown fox');
  await t.throwsAsync(verify(data, new DigestVerifier(digestOf(data), data.length - 1)), { instanceOf: SizeMismatchError });
  await t.throwsAsync(verify(data, new DigestVerifier(digestOf(data), data.length + 1)), { instanceOf: SizeMismatchError });
});
