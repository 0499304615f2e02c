import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ClusterAuth, HEADER, SIGNATURE_MAX_SKEW_MS, UnauthorizedError, type AuthFailure, type AuthResult } from '@shoal/core';

/** Routes every service answers without the token: liveness, readiness and metrics. */
export const PUBLIC_OPS_ROUTES: readonly string[] = ['/healthz', '/readyz', '/metrics'];

export interface TokenAuthOptions {
  /** The cluster's shared secret; undefined runs the cluster open. Ignored when `auth` is given. */
  token?: string | undefined;
  /** The cluster's keys (rotated by a token-file watcher); built from `token` when absent. */
  auth?: ClusterAuth | undefined;
  /**
   * Whether a signature's audience names this service (`supernode`, or `peer/<host:port>`
   * for one of this peer's addresses). Signatures for anyone else are refused.
   * @default refuse every signature (the token header only)
   */
  isMe?: ((audience: string) => boolean) | undefined;
  /**
   * Route patterns (as registered, e.g. `/healthz`) answered without the token.
   * Everything else, including paths no route matches, needs it.
   * @default PUBLIC_OPS_ROUTES
   */
  publicRoutes?: readonly string[];
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Authenticates one request (HTTP or a WebSocket upgrade) by its raw URL and headers. */
export function authenticate(auth: ClusterAuth, request: { method?: string | undefined; url?: string | undefined; headers: IncomingHttpHeaders }, isMe: (audience: string) => boolean): AuthResult {
  return auth.check(
    { method: request.method ?? 'GET', url: request.url ?? '', signature: first(request.headers[HEADER.signature]), token: first(request.headers[HEADER.token]) },
    isMe,
  );
}

const refuseSignatures = (): boolean => false;

/** What each refusal means for the operator reading the log (the client only ever sees a bare 401). */
export function explainAuthFailure(reason: AuthFailure): string {
  switch (reason) {
    case 'missing':
      return 'no signature and no token: a client outside the cluster, or a Shoal process started without --token-file';
    case 'malformed':
      return 'a malformed signature header';
    case 'unknown-key':
      return 'signed with another cluster token than this process holds (another Secret mounted, or a token rotation not yet read on both sides)';
    case 'expired':
    case 'future':
      return `its timestamp is more than ${SIGNATURE_MAX_SKEW_MS / 1000} s ${reason === 'expired' ? 'behind' : 'ahead of'} this host's clock: the two hosts' clocks are out of step (check their time sync)`;
    case 'wrong-audience':
      return 'signed for another address than this one: the caller dialled an address this service does not answer for (check --advertise)';
    case 'bad-signature':
      return 'the signature does not match the request (altered on the way, or the path rewritten by something in between)';
    case 'replayed':
      return 'a signature already used: a replayed request';
    case 'wrong-token':
      return 'the x-shoal-token header does not match the cluster token';
  }
}

/** A refusal of one kind from one address is logged at most this often, with the count of those between. Milliseconds: 1 min. */
export const REFUSAL_LOG_INTERVAL_MS = 60_000;
/** Addresses and reasons remembered for that (the oldest is forgotten first). */
const MAX_REFUSAL_KEYS = 1_024;

/** The part of a logger (pino's, fastify's) that RefusalLog uses. */
export interface RefusalLogger {
  warn(fields: Record<string, unknown>, message: string): void;
}

/**
 * Logs refused requests at warn, once per address and reason per REFUSAL_LOG_INTERVAL_MS
 * (with how many were not logged since), so a mismatched node asking for every piece does
 * not flood the log, and the first refusal of each kind is never hidden at debug.
 */
export class RefusalLog {
  private readonly log: RefusalLogger;
  private readonly seen = new Map<string, { loggedAtMs: number; unlogged: number }>();

  constructor(log: RefusalLogger) {
    this.log = log;
  }

  refused(remote: string | undefined, reason: AuthFailure, what: string, nowMs = Date.now()): void {
    const key = `${remote ?? '?'}|${reason}`;
    const entry = this.seen.get(key);
    if (entry !== undefined && nowMs - entry.loggedAtMs < REFUSAL_LOG_INTERVAL_MS) {
      entry.unlogged += 1;
      return;
    }
    this.seen.delete(key);
    if (this.seen.size >= MAX_REFUSAL_KEYS) this.seen.delete(this.seen.keys().next().value as string);
    this.seen.set(key, { loggedAtMs: nowMs, unlogged: 0 });
    this.log.warn({ remote, reason, notLoggedSince: entry?.unlogged }, `${what} refused: ${explainAuthFailure(reason)}`);
  }
}

/**
 * Deny by default: every request needs a valid signature for this service or the
 * cluster token (401, no detail on why) unless the route it was matched to is
 * public. The decision is made on the route the router chose, never on the raw
 * URL: `/%61pi/v1/status` routes to `/api/v1/status`, so a prefix test on
 * `request.url` let encoded paths through. The signature covers the raw URL as
 * it arrived, the same bytes the sender signed.
 */
export const tokenAuthPlugin = fp(
  async (app: FastifyInstance, options: TokenAuthOptions) => {
    const publicRoutes = new Set(options.publicRoutes ?? PUBLIC_OPS_ROUTES);
    const auth = options.auth ?? new ClusterAuth({}, { token: options.token });
    const isMe = options.isMe ?? refuseSignatures;
    const refusals = new RefusalLog(app.log.child({ module: 'auth' }));
    app.addHook('onRequest', async (request) => {
      const route = request.routeOptions.url;
      if (route !== undefined && publicRoutes.has(route)) return;
      const result = authenticate(auth, request.raw, isMe);
      if (!result.ok) {
        refusals.refused(request.ip, result.reason, 'request');
        throw new UnauthorizedError(undefined, result.reason);
      }
    });
  },
  { name: 'shoal-token-auth' },
);
