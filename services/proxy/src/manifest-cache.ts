import { digestOf, type Digest } from '@shoal/core';

export interface CachedManifest {
  /** The exact bytes the registry served. */
  readonly bytes: Buffer;
  readonly contentType: string;
}

/**
 * Manifests by digest, bounded by their total size in bytes and evicted least
 * recently used first. Content is immutable per digest, so entries never
 * expire; whether a client may read an entry is checked upstream separately.
 */
export class ManifestCache {
  readonly maxBytes: number;
  readonly maxEntryBytes: number;
  private readonly entries = new Map<Digest, CachedManifest>();
  private totalBytes = 0;

  constructor(init: { maxBytes: number; maxEntryBytes: number }) {
    this.maxBytes = init.maxBytes;
    this.maxEntryBytes = Math.min(init.maxEntryBytes, init.maxBytes);
  }

  get sizeBytes(): number {
    return this.totalBytes;
  }

  get size(): number {
    return this.entries.size;
  }

  get(digest: Digest): CachedManifest | undefined {
    const entry = this.entries.get(digest);
    if (entry === undefined) return undefined;
    // Map keeps insertion order: re-inserting makes this the most recently used.
    this.entries.delete(digest);
    this.entries.set(digest, entry);
    return entry;
  }

  /**
   * Stores a manifest if its bytes hash to `digest` and it fits. Returns
   * whether it was stored.
   */
  set(digest: Digest, bytes: Buffer, contentType: string): boolean {
    if (bytes.length > this.maxEntryBytes) return false;
    if (digestOf(bytes) !== digest) return false;
    const previous = this.entries.get(digest);
    if (previous !== undefined) {
      this.entries.delete(digest);
      this.totalBytes -= previous.bytes.length;
    }
    this.entries.set(digest, { bytes, contentType });
    this.totalBytes += bytes.length;
    for (const [oldest, entry] of this.entries) {
      if (this.totalBytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.totalBytes -= entry.bytes.length;
    }
    return true;
  }
}
