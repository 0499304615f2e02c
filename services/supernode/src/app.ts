import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { ClusterAuth, isSupernodeAudience, pieceSpan, systemClock, type Digest, type Logger } from '@shoal/core';
import {
  counter,
  errorRenderingPlugin,
  gauge,
  histogram,
  opsPlugin,
  PUBLIC_OPS_ROUTES,
  tokenAuthPlugin,
  serverTimeoutOptions,
  SERVER_HEADERS_TIMEOUT_MS,
  SERVER_KEEP_ALIVE_TIMEOUT_MS,
  SERVER_REQUEST_TIMEOUT_MS,
  TRANSFER_DURATION_BUCKETS_SECONDS,
} from '@shoal/service-kit';
import type { PieceStoreApi } from '@shoal/store';
import type { RegistryClientApi } from '@shoal/registry-client';
import { BlobTasks } from './blob-tasks.js';
import { DEFAULT_PEER_TTL_MS, PeerTable } from './peer-table.js';
import { Scheduler, type SchedulerInit } from './scheduler/index.js';
import { Swarm } from './swarm.js';
import { scheduleRoutes } from './routes/schedule.js';
import { blobRoutes } from './routes/blobs.js';
import { attachPeersWebSocket } from './routes/peers-ws.js';
import { httpIdentityCheck, Registrar, type IdentityCheck } from './registration.js';
import { PreheatJobs, type PreheatInit } from './preheat.js';
import { PeerLinks } from './peer-links.js';
import { preheatRoutes } from './routes/preheat.js';
import { statusRoutes, STATUS_PAGE_PATH } from './routes/status.js';
import { PeerThroughput } from './routes/status-throughput.js';
import { ImagePullJobController, LeaderElector, type ImagePullJobControllerInit, type KubeAccess, type LeaderElectionInit } from './controller/index.js';

export interface SupernodeComponents {
  log: Logger;
  store: PieceStoreApi & { on(event: 'piece', listener: (digest: Digest, index: number) => void): unknown };
  registry: RegistryClientApi;
  metrics?: Registry;
}

export interface SupernodeInit {
  /** The cluster token; undefined runs open. Ignored when `auth` is given. */
  token?: string | undefined;
  /** The cluster's keys (rotated by a token-file watcher); built from `token` when absent. */
  auth?: ClusterAuth | undefined;
  /** How an advertised URL whose host is not the connection's address is checked. @default httpIdentityCheck */
  identityCheck?: IdentityCheck | undefined;
  /** @default DEFAULT_MAX_CONCURRENT_FETCHES */
  maxConcurrentFetches?: number;
  /** Back-to-source fetches from one registry at once (`--max-fetches-per-registry`). @default defaultFetchesPerRegistry(maxConcurrentFetches) */
  maxFetchesPerRegistry?: number | undefined;
  scheduler?: SchedulerInit;
  preheat?: PreheatInit;
  /** Server timeouts; each defaults to its SUPERNODE_SERVER_*_TIMEOUT_MS constant. */
  serverTimeouts?: Partial<SupernodeServerTimeouts> | undefined;
  /** Run the ImagePullJob controller against this Kubernetes API (once the app is ready); undefined: off. */
  imagePullJobs?: { kube: KubeAccess; init?: ImagePullJobControllerInit; leaderElection?: LeaderElectionInit | undefined } | undefined;
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
  const tasks = new BlobTasks(components, { maxConcurrentFetches: init.maxConcurrentFetches, maxFetchesPerRegistry: init.maxFetchesPerRegistry });
  const scheduler = new Scheduler({ clock: systemClock }, init.scheduler);
  const throughput = new PeerThroughput({ clock: systemClock });
  const peers = new PeerTable({}, { onRemove: (peerId) => {
    scheduler.removePeer(peerId);
    throughput.forget(peerId);
  } });
  const swarm = new Swarm({ log: components.log, store: components.store, scheduler, peers, fetchQuietMs: (digest) => tasks.fetchQuietMs(digest) });
  const auth = init.auth ?? new ClusterAuth({}, { token: init.token });
  const registrar = new Registrar({ log: components.log, peers, swarm, identityCheck: init.identityCheck ?? httpIdentityCheck(auth) });
  const pruner = setInterval(() => peers.prune(), PEER_PRUNE_INTERVAL_MS);
  pruner.unref();

  await app.register(opsPlugin, { metricsPrefix: 'shoal_supernode_', metrics: components.metrics });
  await app.register(errorRenderingPlugin);
  await app.register(tokenAuthPlugin, { auth, isMe: isSupernodeAudience, publicRoutes: [...PUBLIC_OPS_ROUTES, STATUS_PAGE_PATH] });
  await app.register(blobRoutes, { store: components.store, tasks, onPieceSending: (digest, piece, state) => swarm.seedSending(digest, piece, state) });
  await app.register(scheduleRoutes, { swarm, peers, registrar });
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
  // With leader election, every replica runs this and the controller runs only while this replica holds the Lease.
  const leaderElection = init.imagePullJobs?.leaderElection;
  const elector = controller === undefined || leaderElection === undefined || init.imagePullJobs === undefined ? undefined : new LeaderElector({ log: components.log, kube: init.imagePullJobs.kube }, leaderElection);
  if (controller !== undefined) {
    app.addHook('onReady', async () => {
      if (elector === undefined) controller.start();
      else elector.run({ started: () => controller.start(), stopped: () => controller.close() });
    });
  }

  const m = app.metrics;
  const badPieces = counter(m, 'shoal_supernode_bad_piece_reports_total', 'Reports by peers of a parent that sent bytes not matching the piece hash, by parent kind (peer, supernode)', ['parent']);
  swarm.onBadPiece = (parent) => badPieces.inc({ parent });
  const delivered = counter(m, 'shoal_supernode_swarm_delivered_bytes_total', 'Piece bytes peers reported verified (from other peers or this cache): bytes nodes got from the swarm');
  swarm.onPeerPieces = (peerId, bytes) => {
    delivered.inc(bytes);
    throughput.add(peerId, bytes);
  };
  let fetchedBytes = 0;
  const upstreamBytes = counter(m, 'shoal_supernode_upstream_bytes_total', 'Blob bytes fetched from registries and verified (registry egress caused by the cluster)');
  components.store.on('piece', (digest, index) => {
    const record = components.store.get(digest);
    if (record === undefined) return;
    const { length } = pieceSpan(record.layout, index);
    fetchedBytes += length;
    upstreamBytes.inc(length);
  });
  const fetches = histogram(m, 'shoal_supernode_upstream_fetch_duration_seconds', 'Time to fetch one blob from its registry into the cache, by result', ['result'], TRANSFER_DURATION_BUCKETS_SECONDS);
  tasks.onFetchDone = (result, seconds) => fetches.observe({ result }, seconds);
  const resumed = counter(m, 'shoal_supernode_upstream_fetch_resumes_total', 'Fetches from a registry that went on from where they were on a new connection (a ranged GET): the old one broke mid-blob, or brought under the minimum rate');
  tasks.onFetchResumed = () => resumed.inc();
  gauge(m, 'shoal_supernode_cache_bytes', 'Bytes held by the supernode cache (complete and partial blobs)', { collect() { this.set(components.store.usage().bytes); } });
  gauge(m, 'shoal_supernode_cache_blobs', 'Blobs held by the supernode cache', { collect() { this.set(components.store.usage().blobs); } });
  gauge(m, 'shoal_supernode_peers', 'Live peers (registered, heard from within the peer TTL)', { collect() { this.set(peers.size); } });
  gauge(m, 'shoal_supernode_peers_connected', 'Peers with an open WebSocket to this supernode', { collect() { this.set(links.size); } });
  gauge(m, 'shoal_supernode_inflight_fetches', 'Blobs being fetched from registries (or waiting for a fetch slot)', { collect() { this.set(tasks.inflightCount); } });
  gauge(m, 'shoal_supernode_queued_fetches', 'Blobs waiting for a fetch slot', { collect() { this.set(tasks.queuedCount); } });
  gauge(m, 'shoal_supernode_scheduler_inflight', 'Piece transfers the scheduler has assigned and not yet seen completed', { collect() { this.set(scheduler.stats().inflightAssignments); } });
  gauge(m, 'shoal_supernode_scheduler_seed_inflight', 'Piece transfers assigned to this supernode (the seed) and not yet seen completed', { collect() { this.set(scheduler.stats().seedInflight); } });
  gauge(m, 'shoal_supernode_swarm_blobs', 'Blobs the scheduler tracks (swarm tasks)', { collect() { this.set(scheduler.stats().blobs); } });
  gauge<'state'>(m, 'shoal_supernode_preheat_jobs', 'Preheat jobs remembered (the last 100), by state', {
    labelNames: ['state'],
    collect() {
      const counts = { running: 0, done: 0, failed: 0 };
      for (const job of preheat.recent(Number.MAX_SAFE_INTEGER)) counts[job.state]++;
      for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
    },
  });

  await app.register(statusRoutes, {
    sources: {
      clock: systemClock,
      store: components.store,
      tasks,
      peers,
      links,
      scheduler,
      throughput,
      preheat,
      imagePullJobs: controller === undefined ? undefined : (limit) => controller.summaries(limit),
      fetchedBytes: () => fetchedBytes,
    },
  });

  attachPeersWebSocket(app, peers, swarm, auth, { idleMs: timeouts.peerSocketIdleMs, links, registrar });
  app.addHook('onClose', async () => {
    registrar.close();
    clearInterval(pruner);
    await elector?.close();
    await controller?.close();
    preheat.close();
    tasks.close();
  });
  return { app, tasks, peers };
}
