import type { Readable } from 'node:stream';
import type { Digest } from '@shoal/core';

/**
 * Contract of the registry client (implemented in client.ts). Every call:
 * - uses https unless the registry host:port is in `plainHttpHosts`;
 * - sends `authorization` as given; on a 401 with a Bearer challenge, when
 *   `authorization` is absent or Basic, runs the token flow (anonymous, or with
 *   the Basic credentials at the realm), caches the token per registry, scope
 *   and credential until it expires, and retries once; a 401 that remains is
 *   returned to the caller (never thrown) with its `www-authenticate` header;
 * - follows 301/302/303/307/308 itself (at most 5 hops), and never sends
 *   `Authorization` to a host other than the registry;
 * - retries transport errors and 5xx (GET/HEAD only, before any body byte was
 *   returned) with full-jitter backoff, honouring `Retry-After` on 429/503;
 * - maps transport failures to UpstreamError (502 unreachable, 504 timeout)
 *   keeping `{ cause }`.
 * Bodies are streams; the caller must consume or destroy every `body`.
 */
export interface RegistryRequest {
  /** API host[:port] as parsed by parseRegistryHost. */
  registry: string;
  /** Path and query, starting with `/v2/`. */
  path: string;
  method: 'GET' | 'HEAD';
  /** Extra request headers (Accept, Range). Header names lowercase. */
  headers?: Record<string, string>;
  /** The client's Authorization header value, if any. */
  authorization?: string | undefined;
  signal?: AbortSignal | undefined;
}

export interface RegistryResponse {
  statusCode: number;
  /** Lowercase header names; multi-valued headers joined with ', '. */
  headers: Record<string, string>;
  /** Empty for HEAD. Must be consumed or destroyed. */
  body: Readable;
}

export interface RegistryClientInit {
  /** `host:port` entries reached over plain HTTP. */
  plainHttpHosts?: readonly string[];
  /** @default 3 */
  maxRetries?: number;
  /** Connect timeout. @default 5000 */
  connectTimeoutMs?: number;
  /** Time to wait for response headers (not the body). @default 30000 */
  headersTimeoutMs?: number;
  /** Longest silence in a body before it is declared stalled. @default 30000 */
  bodyTimeoutMs?: number;
  /** Base of the retry backoff. @default 200 */
  retryBaseMs?: number;
}

export interface BlobFetchOptions {
  registry: string;
  repository: string;
  digest: Digest;
  authorization?: string | undefined;
  /** A Range header value, e.g. `bytes=100-`. */
  range?: string | undefined;
  signal?: AbortSignal | undefined;
}

export interface RegistryClientApi {
  /** The base URL (`https://host` or `http://host:port`) used for a registry. */
  baseUrl(registry: string): string;
  request(request: RegistryRequest): Promise<RegistryResponse>;
  /** GET /v2/<repo>/blobs/<digest> (redirects followed). */
  getBlob(options: BlobFetchOptions): Promise<RegistryResponse>;
  /** HEAD /v2/<repo>/blobs/<digest>. */
  headBlob(options: BlobFetchOptions): Promise<RegistryResponse>;
  close(): Promise<void>;
}
