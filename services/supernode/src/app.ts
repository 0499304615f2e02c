import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import { API_PREFIX, systemClock, type Digest, type Logger } from '@shoal/core';
import { errorRenderingPlugin, opsPlugin, tokenAuthPlugin, serverTimeoutOptions, SERVER_HEADERS_TIMEOUT_MS, SERVER_KEEP_ALIVE_TIMEOUT_MS, SERVER_REQUEST_TIMEOUT_MS } from '@shoal/service-kit';
import type { PieceStoreApi } from '@shoal/store';
import type { RegistryClientApi } from '@shoal/registry-client';
import { BlobTasks } from './blob-tasks.js';
import { DEFAULT_PEER_TTL_MS, PeerTable } from './peer-table.js';
import { Scheduler, type SchedulerInit } from './scheduler/index.js';
import { Swarm } from './swarm.js';
import { scheduleRoutes } from './routes/schedule.js';
import { blobRoutes } from './routes/blobs.js';
import { attachPeersWebSocket } from './routes/peers-ws.js';
import { PreheatJobs, type PreheatInit } from './preheat.js';
import { PeerLinks } from './peer-links.js';
import { preheatRoutes } from './routes/preheat.js';
import { ImagePullJobController, type ImagePullJobControllerInit, type KubeAccess } from './controller/index.js';

export interface SupernodeComponents {
  log: Logger;
  store: PieceStoreApi & { on(event: 'piece', listener: (digest: Digest, index: number) => void): unknown };
  registry: RegistryClientApi;
  metrics?: Registry;
}

export interface SupernodeInit {
  /** The cluster token; undefined runs open. */
  token: string | undefined;
  /** @default DEFAULT_MAX_CONCURRENT_FETCHES */
  maxConcurrentFetches?: number;
  scheduler?: SchedulerInit;
  preheat?: PreheatInit;
  /** Server timeouts; each defaults to its SUPERNODE_SERVER_*_TIMEOUT_MS constant. */
  serverTimeouts?: Partial<SupernodeServerTimeouts> | undefined;
  /** Run the ImagePullJob controller against this Kubernetes API (once the app is ready); undefined: off. */
  imagePullJobs?: { kube: KubeAccess; init?: ImagePullJobControllerInit } | undefined;
}

/** How often forgotten peers (no heartbeat) are dropped from the scheduler. */
const PEER_PRUNE_INTERVAL_MS = 10_000;

/**
 * Bounds on how long a client (a peer) may hold a connection without doing
 * its part. Header size is bounded by Node's `maxHeaderSize` (16 KiB, the
 * default, kept); bodies by SUPERNODE_SERVER_BODY_LIMIT_BYTES and per-route limits;
 * WebSocket frames by MAX_WS_FRAME_BYTES.
 */
export interface SupernodeServerTimeouts {
  /** Request headers must be complete this long after the request began. @default 10000 (SUPERNODE_SERVER_HEADERS_TIMEOUT_MS) */
  headersMs: number;
  /** The whole request (headers and body) must have arrived this long after it began. @default 30000 (SUPERNODE_SERVER_REQUEST_TIMEOUT_MS) */
  requestMs: number;
  /**
   * A socket with no byte read or written for this long is destroyed. Longer
   * than PIECE_WAIT_MS, the silence of a piece request waiting for its piece.
   * @default 60000 (SUPERNODE_SERVER_SOCKET_IDLE_TIMEOUT_MS)
   */
  socketIdleMs: number;
  /** An idle keep-alive connection is closed after this long. @default 72000 (SUPERNODE_SERVER_KEEP_ALIVE_TIMEOUT_MS) */
  keepAliveMs: number;
  /** A peer's WebSocket that sends no frame for this long is closed. @default 45000 (DEFAULT_PEER_TTL_MS: three missed heartbeats) */
  peerSocketIdleMs: number;
}

/** Milliseconds: headers within 10 s. */
export const SUPERNODE_SERVER_HEADERS_TIMEOUT_MS = SERVER_HEADERS_TIMEOUT_MS;
/** Milliseconds: a whole request (bodies are at most 64 KiB) within 30 s. */
export const SUPERNODE_SERVER_REQUEST_TIMEOUT_MS = SERVER_REQUEST_TIMEOUT_MS;
/** Milliseconds: 1 min without progress on a socket (PIECE_WAIT_MS is 30 s). */
export const SUPERNODE_SERVER_SOCKET_IDLE_TIMEOUT_MS = 60_000;
/** Milliseconds: fastify's default. */
export const SUPERNODE_SERVER_KEEP_ALIVE_TIMEOUT_MS = SERVER_KEEP_ALIVE_TIMEOUT_MS;
/** Largest request body on any route (the schedule route's own limit; tasks allow 16 KiB). Bytes: 64 KiB. */
export const SUPERNODE_SERVER_BODY_LIMIT_BYTES = 64 * 1024;

export interface SupernodeApp {
  app: FastifyInstance;
  tasks: BlobTasks;
  peers: PeerTable;
}

/** The supernode: cluster cache of registry blobs, piece API and peer membership. */
export async function buildSupernodeApp(components: SupernodeComponents, init: SupernodeInit): Promise<SupernodeApp> {
  const logger: FastifyBaseLogger = components.log.child({ service: 'supernode' });
  const timeouts: SupernodeServerTimeouts = {
    headersMs: init.serverTimeouts?.headersMs ?? SUPERNODE_SERVER_HEADERS_TIMEOUT_MS,
    requestMs: init.serverTimeouts?.requestMs ?? SUPERNODE_SERVER_REQUEST_TIMEOUT_MS,
    socketIdleMs: init.serverTimeouts?.socketIdleMs ?? SUPERNODE_SERVER_SOCKET_IDLE_TIMEOUT_MS,
    keepAliveMs: init.serverTimeouts?.keepAliveMs ?? SUPERNODE_SERVER_KEEP_ALIVE_TIMEOUT_MS,
    peerSocketIdleMs: init.serverTimeouts?.peerSocketIdleMs ?? DEFAULT_PEER_TTL_MS,
  };
  const app = Fastify({
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: SUPERNODE_SERVER_BODY_LIMIT_BYTES,
    ...serverTimeoutOptions(timeouts),
  });
  const tasks = new BlobTasks(components, { maxConcurrentFetches: init.maxConcurrentFetches });
  const scheduler = new Scheduler({ clock: systemClock }, init.scheduler);
  const peers = new PeerTable({}, { onRemove: (peerId) => scheduler.removePeer(peerId) });
  const swarm = new Swarm({ log: components.log, store: components.store, scheduler, peers });
  const pruner = setInterval(() => peers.prune(), PEER_PRUNE_INTERVAL_MS);
  pruner.unref();

  await app.register(opsPlugin, { metricsPrefix: 'shoal_supernode_', metrics: components.metrics });
  await app.register(errorRenderingPlugin);
  await app.register(tokenAuthPlugin, { token: init.token });
  await app.register(blobRoutes, { store: components.store, tasks, onPieceSending: (digest, piece, state) => swarm.seedSending(digest, piece, state) });
  await app.register(scheduleRoutes, { swarm });
  const links = new PeerLinks();
  const preheat = new PreheatJobs({ log: components.log, store: components.store, registry: components.registry, tasks, peers, links }, init.preheat);
  await app.register(preheatRoutes, { jobs: preheat });
  const controller =
    init.imagePullJobs === undefined
      ? undefined
      : new ImagePullJobController(
          {
            log: components.log,
            kube: init.imagePullJobs.kube,
            preheat,
            peerNodeNames: () => new Set(peers.list().flatMap((p) => (p.nodeName !== undefined && links.has(p.peerId) ? [p.nodeName] : []))),
          },
          init.imagePullJobs.init,
        );
  if (controller !== undefined) app.addHook('onReady', async () => controller.start());

  const badPieces = new Counter({ name: 'shoal_supernode_bad_piece_reports_total', help: 'Reports by peers of a parent that sent bytes not matching the piece hash', registers: [app.metrics] });
  swarm.onBadPiece = () => badPieces.inc();
  new Gauge({ name: 'shoal_supernode_cache_bytes', help: 'Bytes held by the supernode cache (complete and partial blobs)', registers: [app.metrics], collect() { this.set(components.store.usage().bytes); } });
  new Gauge({ name: 'shoal_supernode_cache_blobs', help: 'Blobs held by the supernode cache', registers: [app.metrics], collect() { this.set(components.store.usage().blobs); } });
  new Gauge({ name: 'shoal_supernode_peers', help: 'Live peers', registers: [app.metrics], collect() { this.set(peers.size); } });
  new Gauge({ name: 'shoal_supernode_inflight_fetches', help: 'Blobs being fetched from registries', registers: [app.metrics], collect() { this.set(tasks.inflightCount); } });

  app.get(`${API_PREFIX}/status`, async () => {
    const blobs = components.store.list();
    return {
      peers: peers.list().map((p) => ({ peerId: p.peerId, nodeName: p.nodeName, advertiseUrl: p.advertiseUrl, zone: p.zone, lastSeenMs: p.lastSeenMs })),
      blobs: { count: blobs.length, bytes: blobs.reduce((sum, b) => sum + b.sizeBytes, 0), inflight: tasks.inflightCount },
    };
  });

  new Gauge({ name: 'shoal_supernode_scheduler_inflight', help: 'Piece transfers the scheduler has assigned and not yet seen completed', registers: [app.metrics], collect() { this.set(scheduler.stats().inflightAssignments); } });

  attachPeersWebSocket(app, peers, swarm, init.token, { idleMs: timeouts.peerSocketIdleMs, links });
  app.addHook('onClose', async () => {
    clearInterval(pruner);
    await controller?.close();
    preheat.close();
    tasks.close();
  });
  return { app, tasks, peers };
}
