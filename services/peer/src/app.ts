import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { Gauge, type Registry } from 'prom-client';
import { API_PREFIX, type Logger } from '@shoal/core';
import { errorRenderingPlugin, opsPlugin, tokenAuthPlugin } from '@shoal/service-kit';
import type { PieceStoreApi } from '@shoal/store';
import type { BlobProvider } from '@shoal/core';
import type { RateLimiter } from './rate-limit.js';
import { peerBlobRoutes } from './routes/blobs.js';

export interface PeerAppComponents {
  log: Logger;
  store: PieceStoreApi;
  /** Whole blobs for a proxy running apart (the node's Peer). */
  peer: BlobProvider & { readonly activeDownloads: number };
  metrics?: Registry;
  uploadLimiter?: RateLimiter | undefined;
}

/** The peer's HTTP face: pieces for other peers, whole blobs for a proxy running apart. */
export interface PeerAppInit {
  token: string | undefined;
  /** @default DEFAULT_MAX_UPLOADS */
  maxUploads?: number | undefined;
}

export async function buildPeerApp(components: PeerAppComponents, init: PeerAppInit): Promise<FastifyInstance> {
  const logger: FastifyBaseLogger = components.log.child({ service: 'peer' });
  const app = Fastify({ loggerInstance: logger, logController: new LogController({ disableRequestLogging: true }) });
  await app.register(opsPlugin, { metricsPrefix: 'shoal_peer_', metrics: components.metrics });
  await app.register(errorRenderingPlugin);
  await app.register(tokenAuthPlugin, { token: init.token, prefix: API_PREFIX });
  await app.register(peerBlobRoutes, { store: components.store, peer: components.peer, maxUploads: init.maxUploads, uploadLimiter: components.uploadLimiter });
  new Gauge({ name: 'shoal_peer_active_downloads', help: 'Blobs this node is downloading', registers: [app.metrics], collect() { this.set(components.peer.activeDownloads); } });
  return app;
}
