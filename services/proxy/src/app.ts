import type { Socket } from 'node:net';
import { serverTimeoutOptions, SERVER_HEADERS_TIMEOUT_MS, SERVER_KEEP_ALIVE_TIMEOUT_MS, SERVER_REQUEST_TIMEOUT_MS } from '@shoal/service-kit';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import { asShoalError, ociErrorBody, type BlobProvider, type Logger } from '@shoal/core';
import type { RegistryClientApi } from '@shoal/registry-client';
import { resolveProxyConfig, type ProxyInit } from './config.js';
import { API_VERSION, API_VERSION_HEADER, sendOciError } from './oci-reply.js';
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
 * Longest request URL (path and query) answered; longer ones get 414 with an
 * OCI body. The router's maxParamLength does not apply to the `/v2/*`
 * wildcard, so without this a URL was bounded only by Node's 16 KiB header
 * limit. Characters.
 */
export const MAX_URL_LENGTH = MAX_PATH_PARAM_LENGTH;

/**
 * Largest request body accepted. The proxy reads no body (it is a pull-only
 * mirror); a body is refused (413) before it is buffered. Bytes: 16 KiB.
 */
export const PROXY_SERVER_BODY_LIMIT_BYTES = 16 * 1024;

/**
 * Bounds on how long a client may hold a connection without doing its part
 * (slowloris senders, readers that stop reading). Request headers are bounded
 * in size by Node's `maxHeaderSize` (16 KiB, the default, kept).
 */
export interface ProxyServerTimeouts {
  /** Request headers must be complete this long after the request began. @default 10000 (PROXY_SERVER_HEADERS_TIMEOUT_MS) */
  headersMs: number;
  /** The whole request must have arrived this long after it began. @default 30000 (PROXY_SERVER_REQUEST_TIMEOUT_MS) */
  requestMs: number;
  /**
   * A socket with no byte read or written for this long is destroyed: a
   * client that stops reading a blob releases its stream. Longer than any
   * legitimate silence (upstream HEAD with retries, fallback); a wait for the
   * swarm (its first byte, a body's next piece) re-arms it while the swarm
   * shows progress.
   * @default 120000 (PROXY_SERVER_SOCKET_IDLE_TIMEOUT_MS)
   */
  socketIdleMs: number;
  /** An idle keep-alive connection is closed after this long. @default 72000 (PROXY_SERVER_KEEP_ALIVE_TIMEOUT_MS) */
  keepAliveMs: number;
}

/** Milliseconds: headers within 10 s. */
export const PROXY_SERVER_HEADERS_TIMEOUT_MS = SERVER_HEADERS_TIMEOUT_MS;
/** Milliseconds: a whole request within 30 s. */
export const PROXY_SERVER_REQUEST_TIMEOUT_MS = SERVER_REQUEST_TIMEOUT_MS;
/** Milliseconds: 2 min without any progress on a socket. */
export const PROXY_SERVER_SOCKET_IDLE_TIMEOUT_MS = 120_000;
/** Milliseconds: fastify's default, under containerd's 90 s idle-connection timeout. */
export const PROXY_SERVER_KEEP_ALIVE_TIMEOUT_MS = SERVER_KEEP_ALIVE_TIMEOUT_MS;

export interface ProxyAppInit extends ProxyInit {
  /** Server timeouts; each defaults to its PROXY_SERVER_*_TIMEOUT_MS constant. */
  serverTimeouts?: Partial<ProxyServerTimeouts>;
}

/**
 * Connection-level errors (unparsable request, headers over 16 KiB, headers
 * or request too slow) never reach a route: answer them here with an OCI
 * body. A slow request is cut without an answer: a 408 would make containerd
 * retry the same host instead of moving on.
 */
function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  if (error.code !== 'ERR_HTTP_REQUEST_TIMEOUT' && socket.writable) {
    const [status, reason, code, message] =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? ([431, 'Request Header Fields Too Large', 'UNSUPPORTED', 'request headers are larger than 16 KiB'] as const)
        : ([400, 'Bad Request', 'UNSUPPORTED', 'malformed HTTP request'] as const);
    const body = JSON.stringify(ociErrorBody(code, message));
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `${API_VERSION_HEADER}: ${API_VERSION}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/**
 * The registry mirror containerd talks to (through hosts.toml). Registers
 * everything and returns the app without listening: the entry point listens.
 */
export async function buildProxyApp(components: ProxyComponents, init: ProxyAppInit = {}): Promise<FastifyInstance> {
  const config = resolveProxyConfig(init);
  const timeouts: ProxyServerTimeouts = {
    headersMs: init.serverTimeouts?.headersMs ?? PROXY_SERVER_HEADERS_TIMEOUT_MS,
    requestMs: init.serverTimeouts?.requestMs ?? PROXY_SERVER_REQUEST_TIMEOUT_MS,
    socketIdleMs: init.serverTimeouts?.socketIdleMs ?? PROXY_SERVER_SOCKET_IDLE_TIMEOUT_MS,
    keepAliveMs: init.serverTimeouts?.keepAliveMs ?? PROXY_SERVER_KEEP_ALIVE_TIMEOUT_MS,
  };
  const log = components.log.child({ module: 'proxy' });
  // Typed as fastify's logger interface so the app has the default instance type.
  const fastifyLog: FastifyBaseLogger = log;
  const app = Fastify({
    loggerInstance: fastifyLog,
    // One line per blob is logged by the blob route itself.
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { maxParamLength: MAX_PATH_PARAM_LENGTH },
    bodyLimit: PROXY_SERVER_BODY_LIMIT_BYTES,
    ...serverTimeoutOptions(timeouts),
    clientErrorHandler,
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

  app.addHook('onRequest', async (request, reply) => {
    if (request.url.length > MAX_URL_LENGTH) {
      return sendOciError(reply, 414, 'NAME_INVALID', `request URL of ${request.url.length} characters is longer than ${MAX_URL_LENGTH}`);
    }
    return undefined;
  });

  app.setNotFoundHandler((request, reply) => sendOciError(reply, 404, 'NAME_UNKNOWN', `no route for ${request.method} ${request.url.split('?', 1)[0]?.slice(0, 200)}`));

  await app.register(metricsPlugin, { registry: components.metrics });
  await app.register(contextPlugin, { config, log, registry: components.registry, blobs: components.blobs });
  await app.register(healthRoutes);
  await app.register(registryRoutes);
  return app;
}
