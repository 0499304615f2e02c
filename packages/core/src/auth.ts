import { timingSafeEqual, createHash } from 'node:crypto';

/**
 * Compares a presented cluster token with the expected one in constant time
 * (hashing both first so their lengths cannot leak either).
 */
export function tokenMatches(expected: string, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(presented).digest();
  return timingSafeEqual(a, b);
}

/** A short stable fingerprint of a credential, for cache keys (never log the credential itself). */
export function credentialKey(authorization: string | undefined): string {
  if (authorization === undefined || authorization === '') return 'anonymous';
  return createHash('sha256').update(authorization).digest('hex').slice(0, 32);
}
