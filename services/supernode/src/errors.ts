import { ShoalError } from '@shoal/core';

/** The supernode's errors (the shared ones are in @shoal/core's errors.ts). */

// --- back-to-source (blob-tasks.ts) --------------------------------------------

/** A back-to-source download brought less than the minimum rate over a window: cut, its slot freed. */
export class UpstreamTooSlowError extends ShoalError {
  constructor(digest: string, bytesPerSec: number, minBytesPerSec: number) {
    super(`registry sent ${digest} at ${Math.round(bytesPerSec)} B/s, under the ${minBytesPerSec} B/s floor`, { code: 'SHOAL_UPSTREAM_TOO_SLOW', statusCode: 504 });
  }
}

/** The registry refused the credentials the peer passed on (or had none): 401 or 403 there, 403 here. */
export class UpstreamDeniedError extends ShoalError {
  /** The status the registry answered with. */
  readonly upstreamStatus: number;
  constructor(what: string, init: { upstreamStatus: number }) {
    super(`registry answered ${init.upstreamStatus} for ${what}`, { code: 'SHOAL_UPSTREAM_DENIED', statusCode: 403, ociCode: 'DENIED' });
    this.upstreamStatus = init.upstreamStatus;
  }
}

/**
 * The registry is failing (429, 5xx, unreachable) and was asked for this blob
 * a moment ago: the supernode does not ask again before `retryAfterMs`.
 */
export class BackToSourceBackoffError extends ShoalError {
  readonly retryAfterMs: number;
  constructor(digest: string, retryAfterMs: number, cause: Error) {
    super(`back-to-source of ${digest} failed a moment ago (${cause.message}); not asking the registry again for ${retryAfterMs} ms`, {
      code: 'SHOAL_BACK_TO_SOURCE_BACKOFF',
      statusCode: 503,
      cause,
    });
    this.retryAfterMs = retryAfterMs;
  }
}

// --- peer membership (registration.ts) -----------------------------------------

/** A live peer id was claimed by someone who could not show its secret. */
export class PeerIdTakenError extends ShoalError {
  constructor(peerId: string) {
    super(`peer id ${JSON.stringify(peerId)} is registered by a live peer; a second registration needs that peer's secret`, {
      code: 'SHOAL_PEER_ID_TAKEN',
      statusCode: 409,
      ociCode: 'DENIED',
    });
  }
}

// --- preheat jobs (preheat.ts) -------------------------------------------------

/** Known node names listed in an unknown-node error at most. */
const MAX_LISTED_NODES = 50;
/** Unknown node names listed in an unknown-node error at most. */
const MAX_LISTED_UNKNOWN_NODES = 10;

/** The image is something preheat cannot walk (schema 1, a nested index, too many blobs...). */
export class PreheatUnsupportedError extends ShoalError {
  constructor(message: string) {
    super(message, { code: 'SHOAL_PREHEAT_UNSUPPORTED', statusCode: 422, ociCode: 'UNSUPPORTED' });
  }
}

export class PreheatJobUnknownError extends ShoalError {
  constructor(id: string) {
    super(`preheat job ${id} is unknown (never started here, or forgotten)`, { code: 'SHOAL_PREHEAT_JOB_UNKNOWN', statusCode: 404 });
  }
}

/** A node named in a preheat request has no live peer here. */
export class PreheatNodeUnknownError extends ShoalError {
  constructor(unknown: readonly string[], known: readonly string[]) {
    const shown = known.slice(0, MAX_LISTED_NODES).join(', ');
    const more = known.length > MAX_LISTED_NODES ? ` and ${known.length - MAX_LISTED_NODES} more` : '';
    super(
      `unknown node${unknown.length === 1 ? '' : 's'} ${unknown.slice(0, MAX_LISTED_UNKNOWN_NODES).join(', ')}: no live peer registered with that name (known nodes: ${known.length === 0 ? 'none' : `${shown}${more}`})`,
      { code: 'SHOAL_PREHEAT_NODE_UNKNOWN', statusCode: 404 },
    );
  }
}

/** Every remembered job is still running: no room for another. */
export class PreheatBusyError extends ShoalError {
  constructor(running: number) {
    super(`${running} preheat jobs are running; try again when one has finished`, { code: 'SHOAL_PREHEAT_BUSY', statusCode: 503, ociCode: 'TOOMANYREQUESTS' });
  }
}

// --- the ImagePullJob controller (controller/) ---------------------------------

/**
 * The spec of an ImagePullJob is not something the controller can act on; the
 * message says why (and lands in status.message). Never answered over HTTP:
 * its status is what a Kubernetes API server answers an invalid object with.
 */
export class InvalidImagePullJobError extends ShoalError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid spec: ${problems.join('; ')}`, { code: 'SHOAL_IMAGE_PULL_JOB_INVALID', statusCode: 422 });
    this.problems = problems;
  }
}

/** A pull secret named by a job cannot be used: not a .dockerconfigjson, or no `auths` in it. The message never quotes the secret. */
export class PullSecretInvalidError extends ShoalError {
  constructor(reason: string) {
    super(reason, { code: 'SHOAL_PULL_SECRET_INVALID', statusCode: 422 });
  }
}

/** A write to the Kubernetes API lost a race (409 Conflict, or 409 AlreadyExists on create). */
export class KubeConflictError extends ShoalError {
  constructor(message: string) {
    super(message, { code: 'SHOAL_KUBE_CONFLICT', statusCode: 409 });
  }
}
