import { ConfigError } from '@shoal/core';

/**
 * How long the swarm gets to produce the first byte of a blob (openBlob plus the
 * first chunk of its body) before the proxy gives up on it and goes to the
 * registry. Milliseconds. A dead swarm is noticed sooner by other means (no
 * supernode: the peer fails over to the DHT or the registry within about a
 * second), so this only cuts a swarm that is alive but slow to start. 10 s was
 * too short: in the 16-node benchmark on a CPU-starved host it sent 78 % of the
 * bytes to the registry, while the nodes that waited finished in 6 × S/B
 * instead of 15.
 */
export const DEFAULT_FIRST_BYTE_TIMEOUT_MS = 30_000;

/**
 * Longest silence allowed in a blob body once it has started. Past it the
 * response is destroyed, so containerd sees a truncated body and retries with
 * Range instead of waiting for its 5-minute progress timeout. Milliseconds.
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
   * Time the swarm gets to deliver the first byte of a blob before the proxy
   * falls back to the registry, in milliseconds.
   * @default 30000 (DEFAULT_FIRST_BYTE_TIMEOUT_MS)
   */
  firstByteTimeoutMs?: number;
  /**
   * Longest silence in a blob body before the response is destroyed, in milliseconds.
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
