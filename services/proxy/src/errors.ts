import { ShoalError } from '@shoal/core';

/** The swarm made no progress on a blob (no byte of it arrived) for the first-byte timeout, before its answer began. */
export class FirstByteTimeoutError extends ShoalError {
  constructor(timeoutMs: number) {
    super(`the swarm made no progress on the blob for ${timeoutMs} ms`, 'SHOAL_FIRST_BYTE_TIMEOUT', 504, 'UNKNOWN');
  }
}

/** The client (containerd) went away before its response was complete. */
export class ClientGoneError extends ShoalError {
  constructor() {
    super('the client closed the connection', 'SHOAL_CLIENT_GONE', 499, 'UNKNOWN');
  }
}

/** A request to a registry API path without `?ns=`: the proxy only works as a mirror. */
export class MirrorNamespaceMissingError extends ShoalError {
  constructor() {
    super(
      'this is a registry mirror: requests need ?ns=<registry host>, which containerd adds when hosts.toml lists this proxy as a [host] of another registry',
      'SHOAL_NS_MISSING',
      404,
      'NAME_UNKNOWN',
    );
  }
}
