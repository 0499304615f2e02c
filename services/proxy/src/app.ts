import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import { asShoalError, type BlobProvider, type Logger } from '@shoal/core';
import type { RegistryClientApi } from '@shoal/registry-client';
import { resolveProxyConfig, type ProxyInit } from './config.js';
import { sendOciError } from './oci-reply.js';
import { contextPlugin } from './plugins/context.js';
import { metricsPlugin } from './plugins/metrics.js';
import { healthRoutes } from './routes/health.js';
import { registryRoutes } from './routes/registry.js';

export interface ProxyComponents {
  log: Logger;
  /** The upstream registry client; owned by the caller (not closed with the app). */
  registry: RegistryClientApi;
  /** The swarm (the local peer); owned by the caller. */
  blobs: BlobProvider;
  /** Where metrics are registered. @default a new Registry */
  metrics?: Registry | undefined;
}

/**
 * Longest URL path parameter (the `/v2/*` wildcard): a 255-character
 * repository plus `/manifests/` and a 128-character tag or a digest fits with
 * room to spare. Characters.
 */
const MAX_PATH_PARAM_LENGTH = 2048;

/**
 * The registry mirror containerd talks to (through hosts.toml). Registers
 * everything and returns the app without listening: the entry point listens.
 */
export async function buildProxyApp(components: ProxyComponents, init: ProxyInit = {}): Promise<FastifyInstance> {
  const config = resolveProxyConfig(init);
  const log = components.log.child({ module: 'proxy' });
  // Typed as fastify's logger interface so the app has the default instance type.
  const fastifyLog: FastifyBaseLogger = log;
  const app = Fastify({
    loggerInstance: fastifyLog,
    // One line per blob is logged by the blob route itself.
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { maxParamLength: MAX_PATH_PARAM_LENGTH },
    // URLs the router cannot even parse still get an OCI answer.
    frameworkErrors: (error: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
      void sendOciError(reply, 400, 'NAME_INVALID', error.message);
    },
  });

  app.setErrorHandler((error: unknown, request, reply) => {
    if (reply.raw.destroyed) {
      // The client is gone (or the connection was cut on purpose): nobody to answer.
      reply.hijack();
      return;
    }
    const shoal = asShoalError(error);
    const fastifyStatus = (error as { statusCode?: unknown }).statusCode;
    const statusCode = shoal.code === 'SHOAL_INTERNAL' && typeof fastifyStatus === 'number' ? fastifyStatus : shoal.statusCode;
    if (statusCode >= 500) request.log.warn({ err: error, url: request.url }, 'request failed');
    else request.log.debug({ err: error, url: request.url }, 'request refused');
    return sendOciError(reply, statusCode, shoal.ociCode, shoal.message);
  });

  app.setNotFoundHandler((request, reply) => sendOciError(reply, 404, 'NAME_UNKNOWN', `no route for ${request.method} ${request.url.split('?', 1)[0]?.slice(0, 200)}`));

  await app.register(metricsPlugin, { registry: components.metrics });
  await app.register(contextPlugin, { config, log, registry: components.registry, blobs: components.blobs });
  await app.register(healthRoutes);
  await app.register(registryRoutes);
  return app;
}
