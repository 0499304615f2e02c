import { ShoalError } from '@shoal/core';

/** The proxy's errors (the shared ones are in @shoal/core's errors.ts). */

/** The swarm made no progress on a blob (no byte of it arrived) for the first-byte timeout, before its answer began. */
export class FirstByteTimeoutError extends ShoalError {
  constructor(timeoutMs: number) {
    super(`the swarm made no progress on the blob for ${timeoutMs} ms`, { code: 'SHOAL_FIRST_BYTE_TIMEOUT', statusCode: 504 });
  }
}

/** The client (containerd) went away before its response was complete. */
export class ClientGoneError extends ShoalError {
  constructor() {
    super('the client closed the connection', { code: 'SHOAL_CLIENT_GONE', statusCode: 499 });
  }
}

/** A request to a registry API path without `?ns=`: the proxy only works as a mirror. */
export class MirrorNamespaceMissingError extends ShoalError {
  constructor() {
    super(
      'this is a registry mirror: requests need ?ns=<registry host>, which containerd adds when hosts.toml lists this proxy as a [host] of another registry',
      { code: 'SHOAL_NS_MISSING', statusCode: 404, ociCode: 'NAME_UNKNOWN' },
    );
  }
}

/** The body closed before it produced a byte. */
export class EmptyBodyError extends ShoalError {
  constructor() {
    super('body closed before its first byte', { code: 'SHOAL_EMPTY_BODY', statusCode: 502 });
  }
}
