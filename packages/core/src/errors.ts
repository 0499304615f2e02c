/**
 * Errors with stable codes. Every failure Shoal reports has one class with a
 * `code` (machine-readable, stable across releases) and the HTTP `statusCode`
 * a service answers with. The registry-facing side renders them as OCI error
 * bodies (see `ociErrorBody`).
 */

/** OCI distribution error codes (distribution-spec "Error Codes"). */
export type OciErrorCode =
  | 'BLOB_UNKNOWN'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_UNKNOWN'
  | 'NAME_INVALID'
  | 'DIGEST_INVALID'
  | 'RANGE_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'TOOMANYREQUESTS'
  | 'UNSUPPORTED'
  | 'UNKNOWN';

export class ShoalError extends Error {
  readonly code: string;
  readonly statusCode: number;
  /** The OCI code used when this error is shown to a registry client. */
  readonly ociCode: OciErrorCode;

  constructor(message: string, code: string, statusCode: number, ociCode: OciErrorCode, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.statusCode = statusCode;
    this.ociCode = ociCode;
  }
}

export class DigestInvalidError extends ShoalError {
  constructor(message: string) {
    super(message, 'SHOAL_DIGEST_INVALID', 400, 'DIGEST_INVALID');
  }
}

export class NameInvalidError extends ShoalError {
  constructor(message: string) {
    super(message, 'SHOAL_NAME_INVALID', 400, 'NAME_INVALID');
  }
}

export class UnsupportedError extends ShoalError {
  constructor(message: string) {
    super(message, 'SHOAL_UNSUPPORTED', 405, 'UNSUPPORTED');
  }
}

export class RouteNotFoundError extends ShoalError {
  constructor(message: string) {
    super(message, 'SHOAL_ROUTE_NOT_FOUND', 404, 'NAME_UNKNOWN');
  }
}

export class BlobUnknownError extends ShoalError {
  constructor(digest: string, options?: { cause?: unknown }) {
    super(`blob ${digest} is unknown`, 'SHOAL_BLOB_UNKNOWN', 404, 'BLOB_UNKNOWN', options);
  }
}

export class PieceUnavailableError extends ShoalError {
  constructor(digest: string, index: number) {
    super(`piece ${index} of ${digest} is not held here`, 'SHOAL_PIECE_UNAVAILABLE', 404, 'BLOB_UNKNOWN');
  }
}

export class RangeInvalidError extends ShoalError {
  constructor(message: string) {
    super(message, 'SHOAL_RANGE_INVALID', 416, 'RANGE_INVALID');
  }
}

/** Bytes did not hash to what they claimed to be: never store, serve or forward them. */
export class DigestMismatchError extends ShoalError {
  constructor(message: string) {
    super(message, 'SHOAL_DIGEST_MISMATCH', 502, 'UNKNOWN');
  }
}

/** A body was shorter or longer than announced. */
export class SizeMismatchError extends ShoalError {
  constructor(message: string) {
    super(message, 'SHOAL_SIZE_MISMATCH', 502, 'UNKNOWN');
  }
}

/** The upstream registry answered with an error or could not be reached. */
export class UpstreamError extends ShoalError {
  /** Status the registry answered with, if it answered at all. */
  readonly upstreamStatus: number | undefined;
  constructor(message: string, statusCode: 502 | 503 | 504, upstreamStatus?: number, options?: { cause?: unknown }) {
    super(message, 'SHOAL_UPSTREAM', statusCode, 'UNKNOWN', options);
    this.upstreamStatus = upstreamStatus;
  }
}

/** A request lacked the cluster token or carried a wrong one. */
export class UnauthorizedError extends ShoalError {
  constructor(message = 'missing or wrong cluster token') {
    super(message, 'SHOAL_UNAUTHORIZED', 401, 'UNAUTHORIZED');
  }
}

/** A peer or client sent something that does not parse. */
export class BadRequestError extends ShoalError {
  constructor(message: string) {
    super(message, 'SHOAL_BAD_REQUEST', 400, 'UNKNOWN');
  }
}

/** Configuration could not be loaded; `problems` lists every problem at once. */
export class ConfigError extends ShoalError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`, 'SHOAL_CONFIG', 500, 'UNKNOWN');
    this.problems = problems;
  }
}

/** The swarm could not deliver (no source had the piece, or all failed). */
export class SwarmUnavailableError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'SHOAL_SWARM_UNAVAILABLE', 503, 'UNKNOWN', options);
  }
}

/**
 * The cache has no room for a blob: its quota is used by blobs being served or
 * written, or the disk itself is full (ENOSPC / EDQUOT). Nothing of the blob is
 * kept; callers serve the bytes by streaming them through instead of caching.
 */
export class StoreFullError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'SHOAL_STORE_FULL', 507, 'UNKNOWN', options);
  }
}

/** The registry has no manifest for this reference (its 404). */
export class ManifestUnknownError extends ShoalError {
  constructor(reference: string) {
    super(`manifest unknown: ${reference} (the registry answered 404)`, 'SHOAL_MANIFEST_UNKNOWN', 404, 'MANIFEST_UNKNOWN');
  }
}

/** The registry (or proxy) answered 200 with a body that is not a valid manifest: an upstream failure (502). */
export class ManifestInvalidError extends UpstreamError {
  constructor(message: string) {
    super(message, 502, 200);
  }
}

/** A manifest Shoal does not read: schema 1, an index inside an index, or too many entries. */
export class ManifestUnsupportedError extends ShoalError {
  constructor(message: string) {
    super(message, 'SHOAL_MANIFEST_UNSUPPORTED', 422, 'UNSUPPORTED');
  }
}

/** A platform asked for is not in the image's index. */
export class PlatformUnknownError extends ShoalError {
  readonly platform: string;
  /** The platforms the index has (attestations left out). */
  readonly available: readonly string[];
  constructor(platform: string, reference: string, available: readonly string[]) {
    const list = available.length === 0 ? 'no platforms' : available.join(', ');
    super(`no manifest for platform ${platform} in ${reference} (the index has ${list})`, 'SHOAL_PLATFORM_UNKNOWN', 404, 'MANIFEST_UNKNOWN');
    this.platform = platform;
    this.available = available;
  }
}

export interface OciErrorBody {
  errors: Array<{ code: OciErrorCode; message: string; detail?: unknown }>;
}

export function ociErrorBody(code: OciErrorCode, message: string, detail?: unknown): OciErrorBody {
  return { errors: [detail === undefined ? { code, message } : { code, message, detail }] };
}

/** Any thrown value as a ShoalError (unexpected ones become 500 UNKNOWN). */
export function asShoalError(err: unknown): ShoalError {
  if (err instanceof ShoalError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ShoalError(message, 'SHOAL_INTERNAL', 500, 'UNKNOWN', { cause: err });
}
