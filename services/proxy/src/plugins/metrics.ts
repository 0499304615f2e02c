import { performance } from 'node:perf_hooks';
import fp from 'fastify-plugin';
import type { Counter, Histogram } from 'prom-client';
import { Registry } from 'prom-client';
import { counter, histogram, TRANSFER_DURATION_BUCKETS_SECONDS } from '@shoal/service-kit';

export type RequestKind = 'manifest' | 'blob' | 'ping' | 'health' | 'metrics' | 'other';
/**
 * Why a blob went to the registry instead of the swarm: the swarm failed before its
 * first byte, did not start within the first-byte timeout, or the blob is larger than
 * the swarm carries (MAX_BLOB_SIZE_BYTES).
 */
export type FallbackReason = 'swarm_error' | 'first_byte_timeout' | 'too_large';

export interface ProxyMetrics {
  readonly registry: Registry;
  /** Blob bytes sent to clients, by where they came from. */
  readonly blobBytes: Counter<'source'>;
  /** Seconds from request to last byte of each blob answer sent in full, by source. */
  readonly blobDuration: Histogram<'source'>;
  /** Requests by kind, method and status (`aborted` when the client left first). */
  readonly requests: Counter<'kind' | 'method' | 'status'>;
  /** Blobs the swarm could not serve, which went to the registry instead. */
  readonly fallbacks: Counter<'reason'>;
  readonly duration: Histogram<'kind'>;
}

declare module 'fastify' {
  interface FastifyInstance {
    proxyMetrics: ProxyMetrics;
  }
  interface FastifyRequest {
    /** What the request turned out to be, for metrics. */
    shoalKind: RequestKind;
  }
}

export function createProxyMetrics(registry: Registry): ProxyMetrics {
  return {
    registry,
    blobBytes: counter(registry, 'shoal_proxy_blob_bytes_total', 'Blob bytes sent to clients, by source', ['source']),
    blobDuration: histogram(
      registry,
      'shoal_proxy_blob_duration_seconds',
      'Time from request to the last byte of each blob answer sent in full, by source',
      ['source'],
      TRANSFER_DURATION_BUCKETS_SECONDS,
    ),
    requests: counter(registry, 'shoal_proxy_requests_total', 'Requests answered, by kind, method and status', ['kind', 'method', 'status']),
    fallbacks: counter(registry, 'shoal_proxy_fallbacks_total', 'Blobs the swarm could not serve that went to the registry, by reason', ['reason']),
    duration: histogram(
      registry,
      'shoal_proxy_request_duration_seconds',
      'Time from request to the last byte of the response, by kind',
      ['kind'],
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    ),
  };
}

/**
 * Shared metrics (decorates `proxyMetrics`) and a hook that counts every
 * request when its connection is done with it, aborted ones included (fastify's
 * onResponse does not run for a destroyed response).
 */
export const metricsPlugin = fp<{ registry?: Registry | undefined }>(
  async (app, options) => {
    const metrics = createProxyMetrics(options.registry ?? new Registry());
    app.decorate('proxyMetrics', metrics);
    app.decorateRequest('shoalKind', 'other');
    app.addHook('onRequest', async (request, reply) => {
      const started = performance.now();
      reply.raw.once('close', () => {
        const status = reply.raw.writableFinished ? String(reply.raw.statusCode) : 'aborted';
        metrics.requests.inc({ kind: request.shoalKind, method: request.method, status });
        metrics.duration.observe({ kind: request.shoalKind }, (performance.now() - started) / 1000);
      });
    });
  },
  { name: 'shoal-proxy-metrics', fastify: '5.x' },
);
