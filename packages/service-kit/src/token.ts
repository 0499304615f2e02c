import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { HEADER, tokenMatches, UnauthorizedError } from '@shoal/core';

/** Routes every service answers without the token: liveness, readiness and metrics. */
export const PUBLIC_OPS_ROUTES: readonly string[] = ['/healthz', '/readyz', '/metrics'];

export interface TokenAuthOptions {
  /** The cluster's shared secret; undefined runs the cluster open. */
  token: string | undefined;
  /**
   * Route patterns (as registered, e.g. `/healthz`) answered without the token.
   * Everything else, including paths no route matches, needs it.
   * @default PUBLIC_OPS_ROUTES
   */
  publicRoutes?: readonly string[];
}

export function requestHasToken(request: { headers: FastifyRequest['headers'] }, token: string | undefined): boolean {
  if (token === undefined) return true;
  const presented = request.headers[HEADER.token];
  return tokenMatches(token, Array.isArray(presented) ? presented[0] : presented);
}

/**
 * Deny by default: every request needs the cluster token (401, no detail on why) unless
 * the route it was matched to is public. The decision is made on the route the router
 * chose, never on the raw URL: `/%61pi/v1/status` routes to `/api/v1/status`, so a prefix
 * test on `request.url` let encoded paths through.
 */
export const tokenAuthPlugin = fp(
  async (app: FastifyInstance, options: TokenAuthOptions) => {
    const publicRoutes = new Set(options.publicRoutes ?? PUBLIC_OPS_ROUTES);
    app.addHook('onRequest', async (request) => {
      const route = request.routeOptions.url;
      if (route !== undefined && publicRoutes.has(route)) return;
      if (!requestHasToken(request, options.token)) throw new UnauthorizedError();
    });
  },
  { name: 'shoal-token-auth' },
);
