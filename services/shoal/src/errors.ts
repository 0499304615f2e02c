import { ShoalError } from '@shoal/core';
import type { CheckResult } from './commands/check-result.js';

/**
 * The errors of the `shoal` commands (the shared ones are in @shoal/core's
 * errors.ts). A command that throws one exits with code 1 and its message.
 */

/** `shoal pull`: the proxy refused or could not serve the image. */
export class PullError extends ShoalError {
  constructor(message: string) {
    super(message, { code: 'SHOAL_PULL_FAILED', statusCode: 502 });
  }
}

/** `shoal preheat`: the supernode refused, could not be reached, or the job failed. */
export class PreheatError extends ShoalError {
  constructor(message: string) {
    super(message, { code: 'SHOAL_PREHEAT_FAILED', statusCode: 502 });
  }
}

/** `shoal status`: the supernode could not be asked, refused, or answered something that is not a status. */
export class StatusError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { code: 'SHOAL_STATUS_FAILED', statusCode: 502, ...options });
  }
}

/** One `shoal doctor` check failed; `fix` is what the report tells the operator to do. */
export class DoctorCheckError extends ShoalError {
  readonly fix: string;
  constructor(message: string, fix: string) {
    super(message, { code: 'SHOAL_DOCTOR_CHECK_FAILED', statusCode: 500 });
    this.fix = fix;
  }
}

/** `shoal doctor`: some checks failed, exit code 1 (the report itself is already printed). */
export class DoctorFailedError extends ShoalError {
  constructor(failed: readonly CheckResult[]) {
    super(`${failed.length} check(s) failed: ${failed.map((r) => r.check).join(', ')}`, { code: 'SHOAL_DOCTOR_FAILED', statusCode: 500 });
  }
}
