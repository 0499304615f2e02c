import type { FastifyInstance } from 'fastify';
import { API_PREFIX, BlobUnknownError, MAX_SCHEDULE_WAIT_MS, parseDigest, parseWire, ScheduleRequestSchema } from '@shoal/core';
import { whileConnected } from '@shoal/service-kit';
import type { Swarm } from '../swarm.js';
import type { PeerTable } from '../peer-table.js';
import type { Registrar } from '../registration.js';

/** Peers ask which pieces to fetch next and from whom, and report what they got. */
export async function scheduleRoutes(app: FastifyInstance, options: { swarm: Swarm; peers: PeerTable; registrar: Registrar }): Promise<void> {
  app.post<{ Params: { digest: string } }>(`${API_PREFIX}/blobs/:digest/schedule`, { bodyLimit: 64 * 1024 }, async (request, reply) => {
    const digest = parseDigest(request.params.digest);
    const body = parseWire(ScheduleRequestSchema, request.body, 'schedule request');
    // A schedule call may arrive before the peer's WebSocket registration: it registers the
    // peer (same rules as the socket's), and never takes over a live id.
    if (body.advertiseUrl !== undefined && options.peers.get(body.peerId) === undefined) {
      options.registrar.register({ peerId: body.peerId, advertiseUrl: body.advertiseUrl, zone: body.zone, remoteAddress: request.socket.remoteAddress });
    }
    const answer = options.swarm.schedule(digest, body);
    if (answer === undefined) throw new BlobUnknownError(digest);
    const waitMs = Math.min(body.waitMs ?? 0, MAX_SCHEDULE_WAIT_MS);
    if (answer.assignments.length > 0 || body.limit === 0 || waitMs === 0) return answer;
    // Nothing to assign yet: hold the answer until the swarm changes (a long-poll),
    // asking the scheduler again on every change. Its reports were taken above.
    const deadline = performance.now() + waitMs;
    const again = { ...body, have: [], failures: [] };
    return whileConnected(reply.raw, async (gone) => {
      let held = answer;
      for (let left = waitMs; left > 0 && !gone.aborted; left = deadline - performance.now()) {
        // A call that cannot wait (too many held for this blob) is answered now, not spun on.
        if (!(await options.swarm.waitForChange(digest, left, gone, body.peerId))) break;
        const next = options.swarm.schedule(digest, again);
        if (next === undefined) break;
        held = next;
        if (held.assignments.length > 0) break;
      }
      return held;
    });
  });
}
