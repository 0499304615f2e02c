import type { FastifyInstance } from 'fastify';
import { API_PREFIX, BlobUnknownError, parseDigest, parseWire, ScheduleRequestSchema } from '@shoal/core';
import type { Swarm } from '../swarm.js';
import type { PeerTable } from '../peer-table.js';
import type { Registrar } from '../registration.js';

/** Peers ask which pieces to fetch next and from whom, and report what they got. */
export async function scheduleRoutes(app: FastifyInstance, options: { swarm: Swarm; peers: PeerTable; registrar: Registrar }): Promise<void> {
  app.post<{ Params: { digest: string } }>(`${API_PREFIX}/blobs/:digest/schedule`, { bodyLimit: 64 * 1024 }, async (request) => {
    const digest = parseDigest(request.params.digest);
    const body = parseWire(ScheduleRequestSchema, request.body, 'schedule request');
    // A schedule call may arrive before the peer's WebSocket registration: it registers the
    // peer (same rules as the socket's), and never takes over a live id.
    if (body.advertiseUrl !== undefined && options.peers.get(body.peerId) === undefined) {
      options.registrar.register({ peerId: body.peerId, advertiseUrl: body.advertiseUrl, zone: body.zone, remoteAddress: request.socket.remoteAddress });
    }
    const answer = options.swarm.schedule(digest, body);
    if (answer === undefined) throw new BlobUnknownError(digest);
    return answer;
  });
}
