import { ShoalError } from '@shoal/core';

/** The service kit's errors (the shared ones are in @shoal/core's errors.ts). */

/** The reader produced no byte for longer than the idle timeout. */
export class ReaderIdleTimeoutError extends ShoalError {
  constructor(idleMs: number) {
    super(`no byte for ${idleMs} ms`, { code: 'SHOAL_BODY_IDLE_TIMEOUT', statusCode: 504 });
  }
}

/**
 * The response closed, or its socket failed, before its body was sent: the
 * client's side, not the reader's (499, as nginx names a client that left).
 */
export class ResponseClosedError extends ShoalError {
  constructor(cause?: Error) {
    super(cause === undefined ? 'the response closed before its body was sent' : `the response failed before its body was sent: ${cause.message}`, {
      code: 'SHOAL_RESPONSE_CLOSED',
      statusCode: 499,
      cause,
    });
  }
}
