import type { FastifyInstance } from 'fastify';
import { API_PREFIX, BadRequestError, IDENTITY_NONCE_PATTERN, type PeerIdentity } from '@shoal/core';

const NONCE_RE = new RegExp(IDENTITY_NONCE_PATTERN);

/**
 * `GET /identity?nonce=`: who answers at this address. A supernode asks when a
 * peer registers with an advertised URL whose host is not the address its
 * connection came from (a DNS name, NAT): the peer is named as a parent only if
 * the peer answering there is the one registering. Signed like every route.
 */
export async function identityRoutes(app: FastifyInstance, options: { peerId: string }): Promise<void> {
  app.get<{ Querystring: Record<string, string | undefined> }>(`${API_PREFIX}/identity`, async (request): Promise<PeerIdentity> => {
    const nonce = request.query.nonce ?? '';
    if (!NONCE_RE.test(nonce)) throw new BadRequestError('identity nonce must be 32 lowercase hex characters');
    return { peerId: options.peerId, nonce };
  });
}
