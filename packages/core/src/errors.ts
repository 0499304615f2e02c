/**
 * Errors with stable codes. Every failure Shoal reports has one class with a
 * `code` (machine-readable, stable across releases) and the HTTP `statusCode`
 * a service answers with. The registry-facing side renders them as OCI error
 * bodies (see `ociErrorBody`).
 *
 * The catalogue: each package keeps its error classes in its own `errors.ts`
 * (this file for the shared ones), as fastify keeps `lib/errors.js`. A class
 * passes its code and statuses to ShoalError as named fields, never as
 * positional numbers: `{ code: 'SHOAL_X', statusCode: 404, ociCode: 'BLOB_UNKNOWN' }`.
 * A status someone else answered with (a registry, a supernode) is a named
 * field of its own (`upstreamStatus`), never the error's `statusCode`.
 */

import type { AuthFailure } from './cluster-auth.js';

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

/** What a ShoalError carries besides its message. */
export interface ShoalErrorInit {
  /** Machine-readable and stable across releases: `SHOAL_*`. */
  code: string;
  /** The HTTP status a Shoal service answers with. */
  statusCode: number;
  /**
   * The OCI code shown to a registry client.
   * @default 'UNKNOWN'
   */
  ociCode?: OciErrorCode | undefined;
  cause?: unknown;
}

export class ShoalError extends Error {
  readonly code: string;
  readonly statusCode: number;
  /** The OCI code used when this error is shown to a registry client. */
  readonly ociCode: OciErrorCode;

  constructor(message: string, init: ShoalErrorInit) {
    super(message, 'cause' in init ? { cause: init.cause } : undefined);
    this.name = new.target.name;
    this.code = init.code;
    this.statusCode = init.statusCode;
    this.ociCode = init.ociCode ?? 'UNKNOWN';
  }
}

export class DigestInvalidError extends ShoalError {
  constructor(message: string) {
    super(message, { code: 'SHOAL_DIGEST_INVALID', statusCode: 400, ociCode: 'DIGEST_INVALID' });
  }
}

export class NameInvalidError extends ShoalError {
  constructor(message: string) {
    super(message, { code: 'SHOAL_NAME_INVALID', statusCode: 400, ociCode: 'NAME_INVALID' });
  }
}

export class UnsupportedError extends ShoalError {
  constructor(message: string) {
    super(message, { code: 'SHOAL_UNSUPPORTED', statusCode: 405, ociCode: 'UNSUPPORTED' });
  }
}

export class RouteNotFoundError extends ShoalError {
  constructor(message: string) {
    super(message, { code: 'SHOAL_ROUTE_NOT_FOUND', statusCode: 404, ociCode: 'NAME_UNKNOWN' });
  }
}

export class BlobUnknownError extends ShoalError {
  constructor(digest: string, options?: { cause?: unknown }) {
    super(`blob ${digest} is unknown`, { code: 'SHOAL_BLOB_UNKNOWN', statusCode: 404, ociCode: 'BLOB_UNKNOWN', ...options });
  }
}

export class PieceUnavailableError extends ShoalError {
  constructor(digest: string, index: number) {
    super(`piece ${index} of ${digest} is not held here`, { code: 'SHOAL_PIECE_UNAVAILABLE', statusCode: 404, ociCode: 'BLOB_UNKNOWN' });
  }
}

export class RangeInvalidError extends ShoalError {
  constructor(message: string) {
    super(message, { code: 'SHOAL_RANGE_INVALID', statusCode: 416, ociCode: 'RANGE_INVALID' });
  }
}

/** Bytes did not hash to what they claimed to be: never store, serve or forward them. */
export class DigestMismatchError extends ShoalError {
  constructor(message: string) {
    super(message, { code: 'SHOAL_DIGEST_MISMATCH', statusCode: 502 });
  }
}

/**
 * Bytes on this node's disk no longer hash to what was recorded when they were
 * stored (a bad disk, a stray write): the copy is dropped and never sent.
 */
export class CorruptAtRestError extends ShoalError {
  constructor(message: string) {
    super(message, { code: 'SHOAL_CORRUPT_AT_REST', statusCode: 502 });
  }
}

/** A body was shorter or longer than announced. */
export class SizeMismatchError extends ShoalError {
  constructor(message: string) {
    super(message, { code: 'SHOAL_SIZE_MISMATCH', statusCode: 502 });
  }
}

export interface UpstreamErrorInit {
  /**
   * What a Shoal service answers: 502 (bad answer), 503 (unreachable), 504 (timed out).
   * @default 502
   */
  statusCode?: 502 | 503 | 504 | undefined;
  /** The status the registry answered with; undefined when it did not answer at all. */
  upstreamStatus?: number | undefined;
  cause?: unknown;
}

/** The upstream registry answered with an error or could not be reached. */
export class UpstreamError extends ShoalError {
  /** Status the registry answered with, if it answered at all. */
  readonly upstreamStatus: number | undefined;
  constructor(message: string, init: UpstreamErrorInit = {}) {
    const { statusCode = 502, upstreamStatus, ...rest } = init;
    super(message, { code: 'SHOAL_UPSTREAM', statusCode, ...rest });
    this.upstreamStatus = upstreamStatus;
  }
}

/** A request lacked the cluster token or carried a wrong one. */
export class UnauthorizedError extends ShoalError {
  /** Why the request was refused: logged and counted by the refusing service, never sent to the client. */
  readonly reason: AuthFailure | undefined;
  constructor(message = 'missing or wrong cluster token', reason?: AuthFailure) {
    super(message, { code: 'SHOAL_UNAUTHORIZED', statusCode: 401, ociCode: 'UNAUTHORIZED' });
    this.reason = reason;
  }
}

/** A peer or client sent something that does not parse. */
export class BadRequestError extends ShoalError {
  constructor(message: string) {
    super(message, { code: 'SHOAL_BAD_REQUEST', statusCode: 400 });
  }
}

/** Configuration could not be loaded; `problems` lists every problem at once. */
export class ConfigError extends ShoalError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`, { code: 'SHOAL_CONFIG', statusCode: 500 });
    this.problems = problems;
  }
}

/** The swarm could not deliver (no source had the piece, or all failed). */
export class SwarmUnavailableError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { code: 'SHOAL_SWARM_UNAVAILABLE', statusCode: 503, ...options });
  }
}

/**
 * The cache has no room for a blob: its quota is used by blobs being served or
 * written, or the disk itself is full (ENOSPC / EDQUOT). Nothing of the blob is
 * kept; callers serve the bytes by streaming them through instead of caching.
 */
export class StoreFullError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { code: 'SHOAL_STORE_FULL', statusCode: 507, ...options });
  }
}

/** The registry has no manifest for this reference (its 404). */
export class ManifestUnknownError extends ShoalError {
  constructor(reference: string) {
    super(`manifest unknown: ${reference} (the registry answered 404)`, { code: 'SHOAL_MANIFEST_UNKNOWN', statusCode: 404, ociCode: 'MANIFEST_UNKNOWN' });
  }
}

/** The registry (or proxy) answered 200 with a body that is not a valid manifest: an upstream failure (502). */
export class ManifestInvalidError extends UpstreamError {
  constructor(message: string) {
    super(message, { upstreamStatus: 200 });
  }
}

/** A manifest Shoal does not read: schema 1, an index inside an index, or too many entries. */
export class ManifestUnsupportedError extends ShoalError {
  constructor(message: string) {
    super(message, { code: 'SHOAL_MANIFEST_UNSUPPORTED', statusCode: 422, ociCode: 'UNSUPPORTED' });
  }
}

/** A platform asked for is not in the image's index. */
export class PlatformUnknownError extends ShoalError {
  readonly platform: string;
  /** The platforms the index has (attestations left out). */
  readonly available: readonly string[];
  constructor(platform: string, reference: string, available: readonly string[]) {
    const list = available.length === 0 ? 'no platforms' : available.join(', ');
    super(`no manifest for platform ${platform} in ${reference} (the index has ${list})`, { code: 'SHOAL_PLATFORM_UNKNOWN', statusCode: 404, ociCode: 'MANIFEST_UNKNOWN' });
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
  return new ShoalError(message, { code: 'SHOAL_INTERNAL', statusCode: 500, cause: err });
}
