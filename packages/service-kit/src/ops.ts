import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Registry } from 'prom-client';
import { UnauthorizedError } from '@shoal/core';
import { processMetricsRegistry, tokenRejections } from './metrics.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** This service's Prometheus registry (one per app, so tests can run many apps in one process). */
    metrics: Registry;
  }
}

export interface OpsOptions {
  /** Prefix for default process metrics, e.g. `shoal_supernode_`. */
  metricsPrefix: string;
  /** A registry to use instead of a new one. */
  metrics?: Registry | undefined;
  /** Extra readiness check: resolve true when ready to serve. */
  ready?: () => boolean;
}

/** `/healthz`, `/readyz` and `/metrics`, the same on every Shoal service. */
export const opsPlugin = fp(
  async (app: FastifyInstance, options: OpsOptions) => {
    const metrics = options.metrics ?? processMetricsRegistry(options.metricsPrefix);
    app.decorate('metrics', metrics);
    const rejected = tokenRejections(metrics, options.metricsPrefix);
    app.addHook('onError', async (_request, _reply, error) => {
      if (error instanceof UnauthorizedError) rejected.inc({ transport: 'http', reason: error.reason ?? 'unknown' });
    });
    app.get('/healthz', async () => ({ status: 'ok' }));
    app.get('/readyz', async (_request, reply) => {
      const ready = options.ready?.() ?? true;
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'starting' });
    });
    app.get('/metrics', async (_request, reply) => {
      return reply.type(metrics.contentType).send(await metrics.metrics());
    });
  },
  { name: 'shoal-ops' },
);
