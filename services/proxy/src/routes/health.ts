import type { FastifyPluginAsync } from 'fastify';

/** `/healthz` (alive), `/readyz` (ready to serve) and `/metrics` (Prometheus text). */
export const healthRoutes: FastifyPluginAsync = async (app) => {
  app.get('/healthz', async (request) => {
    request.shoalKind = 'health';
    return { status: 'ok' };
  });

  app.get('/readyz', async (request, reply) => {
    request.shoalKind = 'health';
    if (!app.shoalProxy.ready) return reply.code(503).send({ status: 'not ready' });
    return { status: 'ready' };
  });

  app.get('/metrics', async (request, reply) => {
    request.shoalKind = 'metrics';
    const registry = app.proxyMetrics.registry;
    const text = await registry.metrics();
    return reply.header('content-type', registry.contentType).send(text);
  });
};
