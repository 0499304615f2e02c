import type { Readable } from 'node:stream';
import type { Digest } from './digest.js';
import type { ByteRange } from './range.js';
import type { BlobSource } from './wire.js';

/** What the proxy asks the swarm for: one blob of one repository of one registry. */
export interface BlobRequest {
  /** API host (`registry-1.docker.io` for Docker Hub). */
  registry: string;
  repository: string;
  digest: Digest;
  /** Size as the registry reported it (HEAD Content-Length). */
  sizeBytes: number;
  /** The client's own `Authorization` header, passed on for back-to-source. */
  registryAuthorization?: string | undefined;
}

export interface BlobStream {
  /** Where the bytes come from, for `X-Shoal-Source`. */
  source: BlobSource;
  sizeBytes: number;
  /**
   * The requested bytes in order (the whole blob, or exactly `range`). Only
   * verified bytes are emitted; on any failure the stream errors instead of
   * ending, so a reader never mistakes a truncated body for a complete one.
   * Destroying it cancels the work it alone was waiting for.
   */
  body: Readable;
}

/**
 * The swarm as the proxy sees it (the local peer implements it, in-process or
 * over HTTP). `openBlob` rejects before any byte when the swarm cannot serve
 * the blob, so the proxy can fall back to the registry.
 */
export interface BlobProvider {
  openBlob(request: BlobRequest, range: ByteRange | undefined, options?: { signal?: AbortSignal }): Promise<BlobStream>;
}
