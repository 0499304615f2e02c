import { ConfigError } from '@shoal/core';

/**
 * How long the swarm may go without progress before the proxy gives up on a
 * blob it has not started to send, and goes to the registry. Milliseconds.
 * Progress is any byte of the blob reaching the node (BlobProvider.progressAt),
 * not only the first byte of the answer: a swarm that moves at any rate is
 * waited for, so the registry sends each byte once at every link speed. A dead
 * swarm is noticed sooner by other means (no supernode: the peer fails over to
 * the next one, the DHT or the registry within seconds).
 */
export const DEFAULT_FIRST_BYTE_TIMEOUT_MS = 30_000;

/**
 * Longest time a blob body that has started may go without progress before
 * the response is destroyed, so containerd resumes with Range instead of
 * waiting for its 5-minute progress timeout. Milliseconds. As for the first
 * byte, progress is any byte of the blob reaching the node: a reader waiting
 * for one piece while others land is not idle. containerd has no per-request
 * timeout, so a body that progresses is never cut.
 */
export const DEFAULT_BODY_IDLE_TIMEOUT_MS = 30_000;

/** Total size of the in-memory manifest cache (manifests by digest). Bytes: 64 MiB. */
export const DEFAULT_MANIFEST_CACHE_BYTES = 64 * 1024 * 1024;

/** Largest single manifest kept in the cache; larger ones are streamed through only. Bytes: 4 MiB. */
export const MAX_CACHED_MANIFEST_BYTES = 4 * 1024 * 1024;

/** How long an upstream access check (HEAD with the client's Authorization) is trusted. Milliseconds. */
export const ACCESS_CHECK_TTL_MS = 60_000;

/** Most access-check results kept at once (oldest dropped first). Entries. */
export const MAX_ACCESS_CHECK_ENTRIES = 10_000;

/**
 * How long the last good answer for a tag may stand in for the registry while
 * the registry is unreachable or answers 5xx (stale-if-error). Milliseconds: 24 h.
 */
export const DEFAULT_STALE_IF_ERROR_MS = 24 * 60 * 60 * 1000;

/**
 * How long a credential's grant for a digest is remembered for the time the
 * registry is unreachable or answers 5xx (the access check cannot run then).
 * Longer than ACCESS_CHECK_TTL_MS, which applies while the registry answers.
 * Milliseconds: 1 h.
 */
export const DEFAULT_GRANT_MEMORY_MS = 60 * 60 * 1000;

/** Most tags remembered for stale-if-error (per registry, repository, tag and Accept; oldest dropped first). Entries. */
export const MAX_TAG_MEMORY_ENTRIES = 10_000;

/** Most credentials remembered per tag (least recently answered dropped first). Entries. */
export const MAX_CREDENTIALS_PER_TAG = 64;

/** Most grants remembered for registry outages (oldest dropped first). Entries. */
export const MAX_GRANT_MEMORY_ENTRIES = 20_000;

export interface ProxyInit {
  /**
   * Time the swarm may go without progress (no byte of the blob reaching the
   * node) before a blob not yet started falls back to the registry, in milliseconds.
   * @default 30000 (DEFAULT_FIRST_BYTE_TIMEOUT_MS)
   */
  firstByteTimeoutMs?: number;
  /**
   * Longest time a started blob body may go without progress (no byte of the
   * blob reaching the node) before the response is destroyed, in milliseconds.
   * @default 30000 (DEFAULT_BODY_IDLE_TIMEOUT_MS)
   */
  bodyIdleTimeoutMs?: number;
  /**
   * Total bytes of manifests (by digest) kept in memory.
   * @default 67108864 (DEFAULT_MANIFEST_CACHE_BYTES, 64 MiB)
   */
  manifestCacheBytes?: number;
  /**
   * How old the remembered answer for a tag may be and still be served, with
   * `x-shoal-stale`, while the registry is unreachable or answers 5xx; only to
   * a credential the registry answered 200 for that tag. 0 disables.
   * Milliseconds.
   * @default 86400000 (DEFAULT_STALE_IF_ERROR_MS, 24 h)
   */
  staleIfErrorMs?: number;
  /**
   * How long a credential's grant for a digest (blob or manifest) is
   * remembered, to serve it from the swarm (or the manifest cache) while the
   * registry is unreachable or answers 5xx. 0 disables. Milliseconds.
   * @default 3600000 (DEFAULT_GRANT_MEMORY_MS, 1 h)
   */
  grantMemoryMs?: number;
}

export interface ProxyConfig {
  readonly firstByteTimeoutMs: number;
  readonly bodyIdleTimeoutMs: number;
  readonly manifestCacheBytes: number;
  readonly accessCheckTtlMs: number;
  readonly maxAccessCheckEntries: number;
  readonly staleIfErrorMs: number;
  readonly grantMemoryMs: number;
}

/** Applies defaults, validates (every problem reported at once) and freezes. */
export function resolveProxyConfig(init: ProxyInit = {}): ProxyConfig {
  const problems: string[] = [];
  const positive = (name: keyof ProxyInit, value: number | undefined, fallback: number, min: number): number => {
    if (value === undefined) return fallback;
    if (!Number.isSafeInteger(value) || value < min) {
      problems.push(`${name} must be an integer ≥ ${min}, got ${String(value)}`);
      return fallback;
    }
    return value;
  };
  const config: ProxyConfig = {
    firstByteTimeoutMs: positive('firstByteTimeoutMs', init.firstByteTimeoutMs, DEFAULT_FIRST_BYTE_TIMEOUT_MS, 1),
    bodyIdleTimeoutMs: positive('bodyIdleTimeoutMs', init.bodyIdleTimeoutMs, DEFAULT_BODY_IDLE_TIMEOUT_MS, 1),
    manifestCacheBytes: positive('manifestCacheBytes', init.manifestCacheBytes, DEFAULT_MANIFEST_CACHE_BYTES, 0),
    accessCheckTtlMs: ACCESS_CHECK_TTL_MS,
    maxAccessCheckEntries: MAX_ACCESS_CHECK_ENTRIES,
    staleIfErrorMs: positive('staleIfErrorMs', init.staleIfErrorMs, DEFAULT_STALE_IF_ERROR_MS, 0),
    grantMemoryMs: positive('grantMemoryMs', init.grantMemoryMs, DEFAULT_GRANT_MEMORY_MS, 0),
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}
