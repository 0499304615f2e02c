import type { Clock } from '@shoal/core';

/** Most tokens held at once; the oldest go first beyond it. */
export const MAX_CACHED_TOKENS = 1024;
/** A token is dropped this long (at most a tenth of its life) before it expires, so it never dies in flight. */
export const TOKEN_EXPIRY_MARGIN_MS = 10_000;

interface Entry {
  token: string;
  expiresAtMs: number;
}

/**
 * Bearer tokens keyed by (registry, scope, credential hash). A token obtained
 * with one credential is never handed to a request carrying another (or none):
 * private blobs must not leak to anonymous callers. Bounded by count and TTL.
 */
export class TokenCache {
  private readonly entries = new Map<string, Entry>();
  private readonly clock: Clock;
  private readonly maxEntries: number;

  constructor(clock: Clock, maxEntries: number = MAX_CACHED_TOKENS) {
    this.clock = clock;
    this.maxEntries = maxEntries;
  }

  static key(registry: string, scope: string, credentialHash: string): string {
    // Neither part can hold a newline (they come from parsed hosts and header values).
    return `${registry}\n${scope}\n${credentialHash}`;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): string | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAtMs <= this.clock.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.token;
  }

  set(key: string, token: string, ttlMs: number): void {
    const usableMs = ttlMs - Math.min(TOKEN_EXPIRY_MARGIN_MS, ttlMs / 10);
    if (usableMs <= 0) return;
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      const now = this.clock.now();
      for (const [k, e] of this.entries) if (e.expiresAtMs <= now) this.entries.delete(k);
      for (const k of this.entries.keys()) {
        if (this.entries.size < this.maxEntries) break;
        this.entries.delete(k);
      }
    }
    this.entries.set(key, { token, expiresAtMs: this.clock.now() + usableMs });
  }

  /** Forgets `key`, but only if it still holds `token` (a concurrent refresh may have replaced it). */
  delete(key: string, token?: string): void {
    if (token === undefined || this.entries.get(key)?.token === token) this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }
}
