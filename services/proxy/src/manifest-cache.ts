import { LRUCache } from 'lru-cache';
import { digestOf, type Digest } from '@shoal/core';

export interface CachedManifest {
  /** The exact bytes the registry served. */
  readonly bytes: Buffer;
  readonly contentType: string;
}

/**
 * Manifests by digest, bounded by their total size in bytes and evicted least
 * recently used first (lru-cache's maxSize). Content is immutable per digest,
 * so entries never expire; whether a client may read an entry is checked
 * upstream separately.
 */
export class ManifestCache {
  readonly maxBytes: number;
  readonly maxEntryBytes: number;
  private readonly entries: LRUCache<Digest, CachedManifest>;

  constructor(init: { maxBytes: number; maxEntryBytes: number }) {
    this.maxBytes = init.maxBytes;
    this.maxEntryBytes = Math.min(init.maxEntryBytes, init.maxBytes);
    // maxBytes 0 turns the cache off (set refuses everything); lru-cache itself needs a positive size.
    this.entries = new LRUCache({ maxSize: Math.max(1, this.maxBytes), sizeCalculation: (entry) => Math.max(1, entry.bytes.length) });
  }

  get sizeBytes(): number {
    return this.entries.calculatedSize;
  }

  get size(): number {
    return this.entries.size;
  }

  get(digest: Digest): CachedManifest | undefined {
    return this.entries.get(digest);
  }

  /**
   * Stores a manifest if its bytes hash to `digest` and it fits. Returns
   * whether it was stored.
   */
  set(digest: Digest, bytes: Buffer, contentType: string): boolean {
    if (this.maxBytes === 0 || bytes.length > this.maxEntryBytes) return false;
    if (digestOf(bytes) !== digest) return false;
    this.entries.set(digest, { bytes, contentType });
    return true;
  }
}
