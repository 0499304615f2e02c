import type { FastifyError, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { asShoalError, ShoalError, UnauthorizedError } from '@shoal/core';

/**
 * Renders every error of an internal API (peer and supernode) as
 * `{ code, message }` with the error's status; unexpected errors are logged
 * with their stack and shown as 500 without internals.
 */
export const errorRenderingPlugin = fp(
  async (app: FastifyInstance) => {
    app.setErrorHandler((err: FastifyError | Error, request, reply) => {
      const fastifyStatus = (err as FastifyError).statusCode;
      const shoal = err instanceof ShoalError ? err : undefined;
      if (shoal === undefined && fastifyStatus !== undefined && fastifyStatus < 500) {
        return reply.code(fastifyStatus).send({ code: (err as FastifyError).code ?? 'SHOAL_BAD_REQUEST', message: err.message });
      }
      const e = shoal ?? asShoalError(err);
      if (e.statusCode >= 500) request.log.error({ err }, 'request failed');
      // A refused signature or token is logged where it is checked, once a minute per address and reason (RefusalLog).
      else if (!(e instanceof UnauthorizedError)) request.log.warn({ code: e.code, msg: e.message }, 'request refused');
      return reply.code(e.statusCode).send({ code: e.code, message: e.statusCode >= 500 && shoal === undefined ? 'internal error' : e.message });
    });
    app.setNotFoundHandler((request, reply) => reply.code(404).send({ code: 'SHOAL_NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` }));
  },
  { name: 'shoal-error-rendering' },
);
