import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ClusterAuth, HEADER, UnauthorizedError, type AuthResult } from '@shoal/core';

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
    const log = app.log.child({ module: 'auth' });
    app.addHook('onRequest', async (request) => {
      const route = request.routeOptions.url;
      if (route !== undefined && publicRoutes.has(route)) return;
      const result = authenticate(auth, request.raw, isMe);
      if (!result.ok) {
        log.debug({ remote: request.ip, reason: result.reason }, 'request refused');
        throw new UnauthorizedError();
      }
    });
  },
  { name: 'shoal-token-auth' },
);
