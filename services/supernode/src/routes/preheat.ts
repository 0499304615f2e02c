import type { FastifyInstance } from 'fastify';
import { API_PREFIX, BadRequestError, HEADER, parseImageReference, parsePlatform, parseWire, PREHEAT_JOB_ID_PATTERN, PreheatRequestSchema } from '@shoal/core';
import type { PreheatJobs } from '../preheat.js';

export interface PreheatRoutesOptions {
  jobs: PreheatJobs;
}

/** Request bodies are a reference and a few platforms. Bytes: 16 KiB. */
const PREHEAT_BODY_LIMIT_BYTES = 16 * 1024;
const JOB_ID_RE = new RegExp(PREHEAT_JOB_ID_PATTERN);

/**
 * The preheat API: warm the supernode's cache with an image's blobs before
 * nodes need them. Behind the cluster token like every route under API_PREFIX.
 */
export async function preheatRoutes(app: FastifyInstance, options: PreheatRoutesOptions): Promise<void> {
  const { jobs } = options;

  app.post(`${API_PREFIX}/preheat`, { bodyLimit: PREHEAT_BODY_LIMIT_BYTES }, async (request, reply) => {
    const body = parseWire(PreheatRequestSchema, request.body, 'preheat request');
    const image = parseImageReference(body.image);
    const platforms = body.platforms?.map(parsePlatform);
    // The client's registry credential, passed on as peers pass containerd's for a task; never logged.
    const auth = request.headers[HEADER.registryAuthorization];
    const authorization = Array.isArray(auth) ? auth[0] : auth;
    // Resolving waits on the registry: stop if the client leaves before the answer.
    const gone = new AbortController();
    const onClose = (): void => {
      if (!reply.raw.writableEnded) gone.abort(new Error('client went away'));
    };
    reply.raw.once('close', onClose);
    try {
      const job = await jobs.start({ imageText: body.image, image, platforms, nodes: body.nodes, runtimePull: body.runtimePull }, authorization, { signal: gone.signal });
      reply.code(202);
      return job;
    } finally {
      reply.raw.off('close', onClose);
    }
  });

  app.get<{ Params: { id: string } }>(`${API_PREFIX}/preheat/:id`, async (request) => {
    const { id } = request.params;
    if (!JOB_ID_RE.test(id)) throw new BadRequestError(`invalid preheat job id ${JSON.stringify(id.slice(0, 60))}`);
    return jobs.get(id);
  });
}
