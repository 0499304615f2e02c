import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { Gauge } from 'prom-client';
import { API_PREFIX, type Logger } from '@shoal/core';
import { errorRenderingPlugin, opsPlugin, tokenAuthPlugin } from '@shoal/service-kit';
import type { PieceStoreApi } from '@shoal/store';
import type { RegistryClientApi } from '@shoal/registry-client';
import { BlobTasks } from './blob-tasks.js';
import { PeerTable } from './peer-table.js';
import { blobRoutes } from './routes/blobs.js';
import { attachPeersWebSocket } from './routes/peers-ws.js';

export interface SupernodeComponents {
  log: Logger;
  store: PieceStoreApi;
  registry: RegistryClientApi;
  metrics?: Registry;
}

export interface SupernodeInit {
  /** The cluster token; undefined runs open. */
  token: string | undefined;
  /** @default DEFAULT_MAX_CONCURRENT_FETCHES */
  maxConcurrentFetches?: number;
}

export interface SupernodeApp {
  app: FastifyInstance;
  tasks: BlobTasks;
  peers: PeerTable;
}

/** The supernode: cluster cache of registry blobs, piece API and peer membership. */
export async function buildSupernodeApp(components: SupernodeComponents, init: SupernodeInit): Promise<SupernodeApp> {
  const logger: FastifyBaseLogger = components.log.child({ service: 'supernode' });
  const app = Fastify({ loggerInstance: logger, disableRequestLogging: true });
  const tasks = new BlobTasks(components, { maxConcurrentFetches: init.maxConcurrentFetches });
  const peers = new PeerTable();

  await app.register(opsPlugin, { metricsPrefix: 'shoal_supernode_', metrics: components.metrics });
  await app.register(errorRenderingPlugin);
  await app.register(tokenAuthPlugin, { token: init.token, prefix: API_PREFIX });
  await app.register(blobRoutes, { store: components.store, tasks });

  new Gauge({ name: 'shoal_supernode_peers', help: 'Live peers', registers: [app.metrics], collect() { this.set(peers.size); } });
  new Gauge({ name: 'shoal_supernode_inflight_fetches', help: 'Blobs being fetched from registries', registers: [app.metrics], collect() { this.set(tasks.inflightCount); } });

  app.get(`${API_PREFIX}/status`, async () => {
    const blobs = components.store.list();
    return {
      peers: peers.list().map((p) => ({ peerId: p.peerId, advertiseUrl: p.advertiseUrl, zone: p.zone, lastSeenMs: p.lastSeenMs })),
      blobs: { count: blobs.length, bytes: blobs.reduce((sum, b) => sum + b.sizeBytes, 0), inflight: tasks.inflightCount },
    };
  });

  attachPeersWebSocket(app, peers, init.token);
  app.addHook('onClose', async () => tasks.close());
  return { app, tasks, peers };
}
