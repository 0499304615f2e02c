/**
 * How long a client may hold a connection without doing its part, the same
 * knobs on every Shoal service (each picks its own values).
 */
export interface ServerTimeouts {
  /** Request headers must be complete this long after the request began. */
  headersMs: number;
  /** The whole request must have arrived this long after it began. */
  requestMs: number;
  /** A socket with no byte read or written for this long is destroyed. */
  socketIdleMs: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveMs: number;
}

/** Milliseconds: request headers complete within 10 s of the request's start, on every Shoal service. */
export const SERVER_HEADERS_TIMEOUT_MS = 10_000;
/** Milliseconds: a whole request within 30 s (no Shoal route takes a body over 64 KiB). */
export const SERVER_REQUEST_TIMEOUT_MS = 30_000;
/** Milliseconds: fastify's default, and under containerd's 90 s idle-connection timeout. */
export const SERVER_KEEP_ALIVE_TIMEOUT_MS = 72_000;

/** How often Node checks connections against the headers and request timeouts (its default, 30 s, lets a slowloris client live ~40 s past a 10 s limit). Milliseconds. */
export const CONNECTIONS_CHECK_INTERVAL_MS = 1_000;

/** The fastify server options that enforce `timeouts`. */
export function serverTimeoutOptions(timeouts: ServerTimeouts): {
  connectionTimeout: number;
  keepAliveTimeout: number;
  requestTimeout: number;
  http: { headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number };
} {
  return {
    connectionTimeout: timeouts.socketIdleMs,
    keepAliveTimeout: timeouts.keepAliveMs,
    requestTimeout: timeouts.requestMs,
    http: { headersTimeout: timeouts.headersMs, requestTimeout: timeouts.requestMs, connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS },
  };
}
