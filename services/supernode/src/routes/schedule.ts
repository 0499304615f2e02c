import type { FastifyInstance } from 'fastify';
import { API_PREFIX, BlobUnknownError, parseDigest, parseWire, ScheduleRequestSchema } from '@shoal/core';
import type { Swarm } from '../swarm.js';

/** Peers ask which pieces to fetch next and from whom, and report what they got. */
export async function scheduleRoutes(app: FastifyInstance, options: { swarm: Swarm }): Promise<void> {
  app.post<{ Params: { digest: string } }>(`${API_PREFIX}/blobs/:digest/schedule`, { bodyLimit: 64 * 1024 }, async (request) => {
    const digest = parseDigest(request.params.digest);
    const body = parseWire(ScheduleRequestSchema, request.body, 'schedule request');
    const answer = options.swarm.schedule(digest, body);
    if (answer === undefined) throw new BlobUnknownError(digest);
    return answer;
  });
}
