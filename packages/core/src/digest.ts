import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DigestInvalidError, DigestMismatchError, SizeMismatchError } from './errors.js';

/** A validated `sha256:<64 lowercase hex>` digest. Branded so unchecked strings cannot pass. */
export type Digest = string & { readonly __brand: 'Digest' };

const SHA256_RE = /^sha256:[a-f0-9]{64}$/;
// OCI image-spec digest grammar: algorithm ":" encoded.
const ANY_DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/**
 * Parses untrusted text into a Digest. Only sha256 is accepted: it is what every
 * registry in use emits, and it keeps file names derived from digests safe.
 */
export function parseDigest(text: string): Digest {
  if (SHA256_RE.test(text)) return text as Digest;
  if (text.length <= 200 && ANY_DIGEST_RE.test(text)) {
    if (!text.startsWith('sha256:')) throw new DigestInvalidError(`digest algorithm of ${text.split(':')[0]} is not supported (sha256 only)`);
  }
  throw new DigestInvalidError(`invalid digest ${JSON.stringify(text.slice(0, 100))}`);
}

export function isDigest(text: string): text is Digest {
  return SHA256_RE.test(text);
}

/** The 64 hex characters of a digest: safe as a file name. */
export function digestHex(digest: Digest): string {
  return digest.slice(7);
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function digestOf(data: Uint8Array | string): Digest {
  return `sha256:${sha256Hex(data)}` as Digest;
}

/**
 * A pass-through stream that hashes and counts what flows through it and fails
 * the pipeline at the end when the digest or length is not the expected one.
 * Put it before the writer so a wrong blob never gets renamed into place.
 */
export class DigestVerifier extends Transform {
  readonly expected: Digest;
  readonly expectedSize: number | undefined;
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;

  constructor(expected: Digest, expectedSize?: number) {
    super();
    this.expected = expected;
    this.expectedSize = expectedSize;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.expectedSize !== undefined && this.bytes > this.expectedSize) {
      done(new SizeMismatchError(`${this.expected}: more than the expected ${this.expectedSize} bytes`));
      return;
    }
    this.hash.update(chunk);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (this.expectedSize !== undefined && this.bytes !== this.expectedSize) {
      done(new SizeMismatchError(`${this.expected}: got ${this.bytes} bytes, expected ${this.expectedSize}`));
      return;
    }
    const actual = `sha256:${this.hash.digest('hex')}`;
    if (actual !== this.expected) {
      done(new DigestMismatchError(`content hashed to ${actual}, expected ${this.expected}`));
      return;
    }
    done();
  }
}
