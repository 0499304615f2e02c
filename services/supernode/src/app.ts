import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import { API_PREFIX, systemClock, type Digest, type Logger } from '@shoal/core';
import { errorRenderingPlugin, opsPlugin, tokenAuthPlugin } from '@shoal/service-kit';
import type { PieceStoreApi } from '@shoal/store';
import type { RegistryClientApi } from '@shoal/registry-client';
import { BlobTasks } from './blob-tasks.js';
import { PeerTable } from './peer-table.js';
import { Scheduler, type SchedulerInit } from './scheduler/index.js';
import { Swarm } from './swarm.js';
import { scheduleRoutes } from './routes/schedule.js';
import { blobRoutes } from './routes/blobs.js';
import { attachPeersWebSocket } from './routes/peers-ws.js';

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
}

/** How often forgotten peers (no heartbeat) are dropped from the scheduler. */
const PEER_PRUNE_INTERVAL_MS = 10_000;

export interface SupernodeApp {
  app: FastifyInstance;
  tasks: BlobTasks;
  peers: PeerTable;
}

/** The supernode: cluster cache of registry blobs, piece API and peer membership. */
export async function buildSupernodeApp(components: SupernodeComponents, init: SupernodeInit): Promise<SupernodeApp> {
  const logger: FastifyBaseLogger = components.log.child({ service: 'supernode' });
  const app = Fastify({ loggerInstance: logger, logController: new LogController({ disableRequestLogging: true }) });
  const tasks = new BlobTasks(components, { maxConcurrentFetches: init.maxConcurrentFetches });
  const scheduler = new Scheduler({ clock: systemClock }, init.scheduler);
  const peers = new PeerTable({}, { onRemove: (peerId) => scheduler.removePeer(peerId) });
  const swarm = new Swarm({ log: components.log, store: components.store, scheduler, peers });
  const pruner = setInterval(() => peers.prune(), PEER_PRUNE_INTERVAL_MS);
  pruner.unref();

  await app.register(opsPlugin, { metricsPrefix: 'shoal_supernode_', metrics: components.metrics });
  await app.register(errorRenderingPlugin);
  await app.register(tokenAuthPlugin, { token: init.token, prefix: API_PREFIX });
  await app.register(blobRoutes, { store: components.store, tasks });
  await app.register(scheduleRoutes, { swarm });

  const badPieces = new Counter({ name: 'shoal_supernode_bad_piece_reports_total', help: 'Reports by peers of a parent that sent bytes not matching the piece hash', registers: [app.metrics] });
  swarm.onBadPiece = () => badPieces.inc();
  new Gauge({ name: 'shoal_supernode_peers', help: 'Live peers', registers: [app.metrics], collect() { this.set(peers.size); } });
  new Gauge({ name: 'shoal_supernode_inflight_fetches', help: 'Blobs being fetched from registries', registers: [app.metrics], collect() { this.set(tasks.inflightCount); } });

  app.get(`${API_PREFIX}/status`, async () => {
    const blobs = components.store.list();
    return {
      peers: peers.list().map((p) => ({ peerId: p.peerId, advertiseUrl: p.advertiseUrl, zone: p.zone, lastSeenMs: p.lastSeenMs })),
      blobs: { count: blobs.length, bytes: blobs.reduce((sum, b) => sum + b.sizeBytes, 0), inflight: tasks.inflightCount },
    };
  });

  new Gauge({ name: 'shoal_supernode_scheduler_inflight', help: 'Piece transfers the scheduler has assigned and not yet seen completed', registers: [app.metrics], collect() { this.set(scheduler.stats().inflightAssignments); } });

  attachPeersWebSocket(app, peers, swarm, init.token);
  app.addHook('onClose', async () => {
    clearInterval(pruner);
    tasks.close();
  });
  return { app, tasks, peers };
}
