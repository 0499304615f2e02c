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
  credentials: Map<string, number>;
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
  private readonly entries = new Map<string, Entry>();
  private readonly maxAgeMs: number;
  private readonly maxEntries: number;
  private readonly maxCredentialsPerTag: number;
  private readonly clock: Clock;

  constructor(init: { maxAgeMs: number; maxEntries: number; maxCredentialsPerTag: number }, clock: Clock = systemClock) {
    this.maxAgeMs = init.maxAgeMs;
    this.maxEntries = init.maxEntries;
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
    let entry = this.entries.get(k);
    if (entry === undefined || entry.answer.digest !== answer.digest) {
      entry = { answer, answeredAt: now, credentials: new Map() };
    } else {
      entry.answer = answer;
      entry.answeredAt = now;
    }
    const who = credentialFingerprint(authorization);
    entry.credentials.delete(who);
    entry.credentials.set(who, now);
    for (const oldest of entry.credentials.keys()) {
      if (entry.credentials.size <= this.maxCredentialsPerTag) break;
      entry.credentials.delete(oldest);
    }
    // Re-insert: Map order is least recently answered first.
    this.entries.delete(k);
    this.entries.set(k, entry);
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      this.entries.delete(oldest);
    }
  }

  /**
   * The remembered answer and its age (since the registry last confirmed it),
   * if this credential was answered 200 for the tag within `maxAgeMs`.
   */
  recall(key: TagKey, authorization: string | undefined): { answer: TagAnswer; ageMs: number } | undefined {
    if (this.maxAgeMs <= 0) return undefined;
    const k = TagMemory.keyOf(key);
    const entry = this.entries.get(k);
    if (entry === undefined) return undefined;
    const now = this.clock.now();
    if (now - entry.answeredAt > this.maxAgeMs) {
      this.entries.delete(k);
      return undefined;
    }
    const grantedAt = entry.credentials.get(credentialFingerprint(authorization));
    if (grantedAt === undefined || now - grantedAt > this.maxAgeMs) return undefined;
    return { answer: entry.answer, ageMs: Math.max(0, now - entry.answeredAt) };
  }
}
