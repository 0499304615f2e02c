import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { HEADER, tokenMatches, UnauthorizedError } from '@shoal/core';

export interface TokenAuthOptions {
  /** The cluster's shared secret; undefined runs the cluster open. */
  token: string | undefined;
  /** Path prefix the token guards. */
  prefix: string;
}

export function requestHasToken(request: { headers: FastifyRequest['headers'] }, token: string | undefined): boolean {
  if (token === undefined) return true;
  const presented = request.headers[HEADER.token];
  return tokenMatches(token, Array.isArray(presented) ? presented[0] : presented);
}

/** Refuses requests under `prefix` that lack the cluster token (401, no detail on why). */
export const tokenAuthPlugin = fp(
  async (app: FastifyInstance, options: TokenAuthOptions) => {
    app.addHook('onRequest', async (request) => {
      if (!request.url.startsWith(options.prefix)) return;
      if (!requestHasToken(request, options.token)) throw new UnauthorizedError();
    });
  },
  { name: 'shoal-token-auth' },
);
