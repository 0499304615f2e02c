import { LRUCache } from 'lru-cache';
import { sha256Hex, systemClock, type Clock, type Digest } from '@shoal/core';

/** What an upstream HEAD said about a blob or manifest the client may read. */
export interface AccessGrant {
  readonly sizeBytes: number;
  /** Headers of the upstream HEAD worth repeating to the client (lowercase names). */
  readonly headers: Readonly<Record<string, string>>;
}

export interface AccessKey {
  kind: 'blob' | 'manifest';
  authorization: string | undefined;
  registry: string;
  repository: string;
  digest: Digest;
}

/**
 * The credential part of every cache key: a hash of the Authorization value
 * (never the value itself), or `anonymous`. Two requests share a fingerprint
 * only when they carry the very same header value.
 */
export function credentialFingerprint(authorization: string | undefined): string {
  return authorization === undefined || authorization === '' ? 'anonymous' : sha256Hex(authorization);
}

/**
 * Remembers, for a short time, that a credential may read a digest in a
 * repository, so that the many requests of one pull cost one upstream HEAD
 * each. Keys hold a hash of the Authorization value, never the value itself.
 * Only grants are kept: a refusal is cheap to ask again and must not outlive a
 * permission change or a push. Bounded by `maxEntries` (oldest dropped first)
 * and `ttlMs`.
 */
export class AccessCache {
  /** Oldest-set first out (lookups use peek, so reading a grant does not keep it longer). */
  private readonly entries: LRUCache<string, { grant: AccessGrant; grantedAt: number }>;
  private readonly ttlMs: number;
  private readonly clock: Clock;

  constructor(init: { ttlMs: number; maxEntries: number }, clock: Clock = systemClock) {
    this.ttlMs = init.ttlMs;
    this.entries = new LRUCache({ max: init.maxEntries });
    this.clock = clock;
  }

  static keyOf(key: AccessKey): string {
    return `${key.kind} ${credentialFingerprint(key.authorization)} ${key.registry} ${key.repository} ${key.digest}`;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: AccessKey): AccessGrant | undefined {
    return this.recall(key)?.grant;
  }

  /** The grant with its age (time since the registry said yes), while it is within the TTL. */
  recall(key: AccessKey): { grant: AccessGrant; ageMs: number } | undefined {
    const k = AccessCache.keyOf(key);
    const entry = this.entries.peek(k);
    if (entry === undefined) return undefined;
    const ageMs = Math.max(0, this.clock.now() - entry.grantedAt);
    if (ageMs >= this.ttlMs) {
      this.entries.delete(k);
      return undefined;
    }
    return { grant: entry.grant, ageMs };
  }

  /** Forgets every grant: the next request of each credential asks the registry again. */
  clear(): void {
    this.entries.clear();
  }

  set(key: AccessKey, grant: AccessGrant): void {
    this.entries.set(AccessCache.keyOf(key), { grant, grantedAt: this.clock.now() });
  }
}
