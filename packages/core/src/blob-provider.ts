import type { Readable } from 'node:stream';
import type { Digest } from './digest.js';
import type { ByteRange } from './range.js';
import type { BlobSource } from './wire.js';
import type { ChunkReader } from './chunk-reader.js';

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

/**
 * The bytes of a blob answer, as a stream or as a ChunkReader (which lets the
 * sender reuse its buffers). Either carries the requested bytes in order (the
 * whole blob, or exactly the range), gives out only verified bytes, and on any
 * failure errors (rejects) instead of ending, so a truncated body is never
 * mistaken for a complete one. Destroying the stream (closing the reader)
 * cancels the work it alone was waiting for.
 */
export type BlobStream = BlobStreamHead & ({ body: Readable; reader?: never } | { reader: ChunkReader; body?: never });

interface BlobStreamHead {
  /** Where the bytes come from, for `X-Shoal-Source`. */
  source: BlobSource;
  sizeBytes: number;
}

/**
 * The swarm as the proxy sees it (the local peer implements it, in-process or
 * over HTTP). `openBlob` rejects before any byte when the swarm cannot serve
 * the blob, so the proxy can fall back to the registry.
 */
export interface BlobProvider {
  openBlob(request: BlobRequest, range: ByteRange | undefined, options?: { signal?: AbortSignal }): Promise<BlobStream>;
  /**
   * When the provider last received bytes of `digest` (Date.now() ms) while
   * filling it, or undefined when it is not filling it. The proxy's patience is
   * measured from this: a swarm that moves, however slowly, is waited for.
   * Providers that cannot tell leave it out, and the proxy times the reader alone.
   */
  progressAt?(digest: Digest): number | undefined;
}
