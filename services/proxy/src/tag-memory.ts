import { LRUCache } from 'lru-cache';
import { systemClock, type Clock, type Digest } from '@shoal/core';
import { credentialFingerprint } from './access-cache.js';

/** Which tag resolution an answer belongs to: the answer depends on Accept too. */
export interface TagKey {
  registry: string;
  repository: string;
  tag: string;
  /** The Accept header exactly as containerd sent it (undefined when absent). */
  accept: string | undefined;
}

/** What the registry last said about a tag: enough to answer a HEAD; the bytes live in the ManifestCache. */
export interface TagAnswer {
  readonly digest: Digest;
  readonly contentType: string;
  readonly sizeBytes: number;
}

interface Entry {
  answer: TagAnswer;
  /** When the registry last answered 200 with this digest. */
  answeredAt: number;
  /** Credential fingerprint → when the registry last answered it 200 for this tag (with this digest). */
  credentials: LRUCache<string, number>;
}

/**
 * The last good answer per (registry, repository, tag, Accept), for
 * stale-if-error: when the registry cannot be reached (or answers 5xx), a tag
 * still resolves to the digest it had. Only a credential the registry itself
 * answered 200 for that tag, with that digest, gets the remembered answer: a
 * private tag never reaches someone the registry never granted. When the tag
 * moves, the credentials seen with the old digest are forgotten.
 *
 * Bounded by `maxEntries` tags (least recently answered dropped first) and
 * `maxCredentialsPerTag` per tag; entries older than `maxAgeMs` are never
 * served and are dropped when met.
 */
export class TagMemory {
  /** Least recently answered first out; recall peeks, so only a new answer keeps a tag longer. */
  private readonly entries: LRUCache<string, Entry>;
  private readonly maxAgeMs: number;
  private readonly maxCredentialsPerTag: number;
  private readonly clock: Clock;

  constructor(init: { maxAgeMs: number; maxEntries: number; maxCredentialsPerTag: number }, clock: Clock = systemClock) {
    this.maxAgeMs = init.maxAgeMs;
    this.entries = new LRUCache({ max: init.maxEntries });
    this.maxCredentialsPerTag = init.maxCredentialsPerTag;
    this.clock = clock;
  }

  static keyOf(key: TagKey): string {
    // Registry hosts, repositories and tags hold no newline; Accept may hold anything but comes last.
    return `${key.registry}\n${key.repository}\n${key.tag}\n${key.accept ?? ''}`;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The registry just answered 200 for this tag to this credential. */
  remember(key: TagKey, authorization: string | undefined, answer: TagAnswer): void {
    if (this.maxAgeMs <= 0) return;
    const k = TagMemory.keyOf(key);
    const now = this.clock.now();
    let entry = this.entries.peek(k);
    if (entry === undefined || entry.answer.digest !== answer.digest) {
      entry = { answer, answeredAt: now, credentials: new LRUCache({ max: this.maxCredentialsPerTag }) };
    } else {
      entry.answer = answer;
      entry.answeredAt = now;
    }
    // Both sets make their key the most recent: the oldest credential, and the least recently answered tag, go first.
    entry.credentials.set(credentialFingerprint(authorization), now);
    this.entries.set(k, entry);
  }

  /**
   * The remembered answer and its age (since the registry last confirmed it),
   * if this credential was answered 200 for the tag within `maxAgeMs`.
   */
  recall(key: TagKey, authorization: string | undefined): { answer: TagAnswer; ageMs: number } | undefined {
    if (this.maxAgeMs <= 0) return undefined;
    const k = TagMemory.keyOf(key);
    const entry = this.entries.peek(k);
    if (entry === undefined) return undefined;
    const now = this.clock.now();
    if (now - entry.answeredAt > this.maxAgeMs) {
      this.entries.delete(k);
      return undefined;
    }
    const grantedAt = entry.credentials.peek(credentialFingerprint(authorization));
    if (grantedAt === undefined || now - grantedAt > this.maxAgeMs) return undefined;
    return { answer: entry.answer, ageMs: Math.max(0, now - entry.answeredAt) };
  }
}
