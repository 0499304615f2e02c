import { systemClock, type Clock } from '@shoal/core';
import { AccessCache } from './access-cache.js';
import { MAX_CREDENTIALS_PER_TAG, MAX_GRANT_MEMORY_ENTRIES, MAX_TAG_MEMORY_ENTRIES, type ProxyConfig } from './config.js';
import { TagMemory } from './tag-memory.js';

/**
 * What one proxy remembers so it can keep answering while a registry is down:
 * the last good answer per tag (stale-if-error) and, per credential, the
 * digests the registry granted it (grant memory). Both are per proxy: a
 * credential granted on another node's proxy is unknown here.
 */
export interface OutageMemory {
  readonly tags: TagMemory;
  /** Grants kept for `grantMemoryMs` (the 60 s access cache serves while the registry answers). */
  readonly grants: AccessCache | undefined;
  readonly challenges: ChallengeMemory;
}

/** Longest `WWW-Authenticate` value remembered. Characters. */
const MAX_CHALLENGE_LENGTH = 2048;

/**
 * The last 401 challenge the registry gave an anonymous client, per
 * (registry, repository). containerd sends credentials only after a 401: when
 * the registry is down, replaying its challenge to an anonymous request lets
 * containerd come back with the credential the memories above may know. A
 * challenge reveals nothing the registry did not tell anyone who asked.
 * Bounded by `maxEntries` (oldest first) and `maxAgeMs`.
 */
export class ChallengeMemory {
  private readonly entries = new Map<string, { challenge: string; seenAt: number }>();

  constructor(
    private readonly init: { maxAgeMs: number; maxEntries: number },
    private readonly clock: Clock = systemClock,
  ) {}

  remember(registry: string, repository: string, challenge: string | undefined): void {
    if (this.init.maxAgeMs <= 0 || challenge === undefined || challenge === '' || challenge.length > MAX_CHALLENGE_LENGTH) return;
    const key = `${registry}\n${repository}`;
    this.entries.delete(key);
    this.entries.set(key, { challenge, seenAt: this.clock.now() });
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.init.maxEntries) break;
      this.entries.delete(oldest);
    }
  }

  recall(registry: string, repository: string): string | undefined {
    const key = `${registry}\n${repository}`;
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (this.clock.now() - entry.seenAt > this.init.maxAgeMs) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.challenge;
  }
}

/** One proxy's outage memory, sized by its config; the context plugin decorates the app with it (`shoalProxy.outage`). */
export function createOutageMemory(config: Pick<ProxyConfig, 'staleIfErrorMs' | 'grantMemoryMs'>): OutageMemory {
  return {
    tags: new TagMemory({ maxAgeMs: config.staleIfErrorMs, maxEntries: MAX_TAG_MEMORY_ENTRIES, maxCredentialsPerTag: MAX_CREDENTIALS_PER_TAG }),
    grants: config.grantMemoryMs > 0 ? new AccessCache({ ttlMs: config.grantMemoryMs, maxEntries: MAX_GRANT_MEMORY_ENTRIES }) : undefined,
    // Worth replaying only while something could be served to the credential that comes back.
    challenges: new ChallengeMemory({ maxAgeMs: Math.max(config.staleIfErrorMs, config.grantMemoryMs), maxEntries: MAX_TAG_MEMORY_ENTRIES }),
  };
}
