import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from '@shoal/core';
import { errorRenderingPlugin, opsPlugin, tokenAuthPlugin, serverTimeoutOptions, SERVER_HEADERS_TIMEOUT_MS, SERVER_KEEP_ALIVE_TIMEOUT_MS, SERVER_REQUEST_TIMEOUT_MS } from '@shoal/service-kit';
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
  /** Server timeouts; each defaults to its PEER_SERVER_*_TIMEOUT_MS constant. */
  serverTimeouts?: Partial<PeerServerTimeouts> | undefined;
}

/**
 * Bounds on how long a client (another peer, a proxy running apart) may hold
 * a connection without doing its part. Header size is bounded by Node's
 * `maxHeaderSize` (16 KiB, the default, kept).
 */
export interface PeerServerTimeouts {
  /** Request headers must be complete this long after the request began. @default 10000 (PEER_SERVER_HEADERS_TIMEOUT_MS) */
  headersMs: number;
  /** The whole request must have arrived this long after it began. @default 30000 (PEER_SERVER_REQUEST_TIMEOUT_MS) */
  requestMs: number;
  /**
   * A socket with no byte read or written for this long is destroyed, so a
   * child that stops reading a piece frees its upload slot (there are only
   * DEFAULT_MAX_UPLOADS). @default 60000 (PEER_SERVER_SOCKET_IDLE_TIMEOUT_MS)
   */
  socketIdleMs: number;
  /** An idle keep-alive connection is closed after this long. @default 72000 (PEER_SERVER_KEEP_ALIVE_TIMEOUT_MS) */
  keepAliveMs: number;
}

/** Milliseconds: headers within 10 s. */
export const PEER_SERVER_HEADERS_TIMEOUT_MS = SERVER_HEADERS_TIMEOUT_MS;
/** Milliseconds: a whole request within 30 s (the peer takes no request bodies). */
export const PEER_SERVER_REQUEST_TIMEOUT_MS = SERVER_REQUEST_TIMEOUT_MS;
/**
 * Milliseconds: 1 min without progress on a socket. Longer than the silence
 * of a whole-blob request waiting for the swarm's first piece (the proxy's
 * HttpBlobProvider gives up on headers after 30 s).
 */
export const PEER_SERVER_SOCKET_IDLE_TIMEOUT_MS = 60_000;
/** Milliseconds: fastify's default. */
export const PEER_SERVER_KEEP_ALIVE_TIMEOUT_MS = SERVER_KEEP_ALIVE_TIMEOUT_MS;
/** Largest request body: the peer's API has no bodies. Bytes: 16 KiB. */
export const PEER_SERVER_BODY_LIMIT_BYTES = 16 * 1024;

export async function buildPeerApp(components: PeerAppComponents, init: PeerAppInit): Promise<FastifyInstance> {
  const logger: FastifyBaseLogger = components.log.child({ service: 'peer' });
  const timeouts: PeerServerTimeouts = {
    headersMs: init.serverTimeouts?.headersMs ?? PEER_SERVER_HEADERS_TIMEOUT_MS,
    requestMs: init.serverTimeouts?.requestMs ?? PEER_SERVER_REQUEST_TIMEOUT_MS,
    socketIdleMs: init.serverTimeouts?.socketIdleMs ?? PEER_SERVER_SOCKET_IDLE_TIMEOUT_MS,
    keepAliveMs: init.serverTimeouts?.keepAliveMs ?? PEER_SERVER_KEEP_ALIVE_TIMEOUT_MS,
  };
  const app = Fastify({
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: PEER_SERVER_BODY_LIMIT_BYTES,
    ...serverTimeoutOptions(timeouts),
  });
  await app.register(opsPlugin, { metricsPrefix: 'shoal_peer_', metrics: components.metrics });
  await app.register(errorRenderingPlugin);
  await app.register(tokenAuthPlugin, { token: init.token });
  await app.register(peerBlobRoutes, { store: components.store, peer: components.peer, maxUploads: init.maxUploads, uploadLimiter: components.uploadLimiter });
  new Gauge({ name: 'shoal_peer_active_downloads', help: 'Blobs this node is downloading', registers: [app.metrics], collect() { this.set(components.peer.activeDownloads); } });
  return app;
}
