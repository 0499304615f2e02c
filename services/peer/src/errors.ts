import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { ShoalError, SwarmUnavailableError, type FailureKindWire } from '@shoal/core';

/** The peer's errors (the shared ones are in @shoal/core's errors.ts). */

/** A parent failed us; `kind` is what the scheduler is told. */
export class ParentFailedError extends ShoalError {
  readonly kind: FailureKindWire;
  constructor(kind: FailureKindWire, message: string, options?: { cause?: unknown }) {
    super(message, { code: 'SHOAL_PARENT_FAILED', statusCode: 502, ...options });
    this.kind = kind;
  }
}

export interface SupernodeRefusal {
  /** The status the supernode answered with. */
  supernodeStatus: number;
  /** The supernode's own error code (`SHOAL_*`), kept as this error's code. */
  code: string;
  message: string;
}

/**
 * The supernode answered with an error the peer should not retry elsewhere
 * (e.g. upstream denied). Its code is the supernode's; its status the
 * supernode's, except that a 5xx there is a 502 here (a bad gateway).
 */
export class SupernodeRefusedError extends ShoalError {
  readonly supernodeStatus: number;
  constructor(refusal: SupernodeRefusal) {
    super(`supernode refused: ${refusal.message}`, { code: refusal.code, statusCode: refusal.supernodeStatus >= 500 ? 502 : refusal.supernodeStatus });
    this.supernodeStatus = refusal.supernodeStatus;
  }
}

/** A supernode did not answer a liveness probe while a call to it waited. */
export class SupernodeUnresponsiveError extends SwarmUnavailableError {
  constructor(unanswered: { url: string; failedProbes: number; probeTimeoutMs: number }) {
    super(`supernode ${unanswered.url} did not answer ${unanswered.failedProbes} liveness probe(s) within ${unanswered.probeTimeoutMs} ms`);
  }
}

/**
 * A blob's start at its supernode went TASK_START_STALL_MS with no news that
 * it moves (no answer; or answers that its fetch waits for the registry's
 * headers, or in a queue that does not move). Not SwarmUnavailableError: a
 * supernode answered, so the node does not fetch the blob itself; the proxy
 * streams it from the registry.
 */
export class TaskStartStalledError extends ShoalError {
  constructor(digest: string, stalledMs: number) {
    super(`the supernode's fetch of ${digest} showed no progress for ${stalledMs} ms`, { code: 'SHOAL_TASK_START_STALLED', statusCode: 504 });
  }
}

/** The runtime answered a CRI call with an error (containerd refused the pull, or has no CRI image service). */
export class RuntimeCallError extends ShoalError {
  readonly grpcCode: number;
  constructor(method: string, err: ServiceError) {
    super(`CRI ${method} failed: ${GrpcStatus[err.code] ?? err.code}: ${err.details || err.message}`.slice(0, 2000), {
      code: 'SHOAL_RUNTIME_CALL_FAILED',
      statusCode: 502,
      cause: err,
    });
    this.grpcCode = err.code;
  }
}
