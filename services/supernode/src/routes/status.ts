import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import {
  API_PREFIX,
  MAX_STATUS_BLOBS,
  MAX_STATUS_IMAGE_PULL_JOBS,
  MAX_STATUS_PEERS,
  MAX_STATUS_PREHEAT_JOBS,
  type Clock,
  type PreheatJob,
  type StatusBlob,
  type StatusImagePullJob,
  type StatusPreheatJob,
  type SupernodeStatus,
} from '@shoal/core';
import type { PieceStoreApi } from '@shoal/store';
import type { BlobTasks } from '../blob-tasks.js';
import type { ImagePullJobSummary } from '../controller/index.js';
import type { PeerLinks } from '../peer-links.js';
import type { PeerTable } from '../peer-table.js';
import type { PreheatJobs } from '../preheat.js';
import type { SchedulerApi } from '../scheduler/index.js';
import type { PeerThroughput } from './status-throughput.js';

/** Where the status page (an HTML shell, no token needed) is served. */
export const STATUS_PAGE_PATH = '/status';
/** A connected peer heard from within this long is healthy: 1.5 heartbeat intervals (10 s). Milliseconds. */
export const PEER_HEALTHY_WITHIN_MS = 15_000;

export interface StatusSources {
  clock: Clock;
  store: PieceStoreApi;
  tasks: BlobTasks;
  peers: PeerTable;
  links: PeerLinks;
  scheduler: SchedulerApi;
  throughput: PeerThroughput;
  preheat: PreheatJobs;
  /** The ImagePullJob controller's jobs; undefined when it does not run here. */
  imagePullJobs: ((limit: number) => ImagePullJobSummary[]) | undefined;
  /** Blob bytes fetched from registries since start. */
  fetchedBytes: () => number;
}

function preheatSummary(job: PreheatJob): StatusPreheatJob {
  const nodes = job.nodes ?? [];
  return {
    id: job.id,
    image: job.image,
    state: job.state,
    blobsDone: job.blobs.filter((b) => b.state === 'done').length,
    blobsTotal: job.blobs.length,
    bytesDone: job.bytesDone,
    bytesTotal: job.bytesTotal,
    nodesDone: nodes.filter((n) => n.state === 'done').length,
    nodesTotal: nodes.length,
    startedAt: job.startedAt,
    ...(job.finishedAt === undefined ? {} : { finishedAt: job.finishedAt }),
    ...(job.message === undefined ? {} : { message: job.message.slice(0, 2000) }),
  };
}

function imagePullJobSummary(job: ImagePullJobSummary): StatusImagePullJob {
  const s = job.status;
  return {
    namespace: job.namespace,
    name: job.name,
    ...(job.image === undefined ? {} : { image: job.image.slice(0, 600) }),
    desired: s.desired ?? 0,
    active: s.active ?? 0,
    succeeded: s.succeeded ?? 0,
    failed: s.failed ?? 0,
    ...(s.message === undefined ? {} : { message: s.message.slice(0, 4000) }),
    ...(s.startTime === undefined ? {} : { startTime: s.startTime }),
    ...(s.completionTime === undefined ? {} : { completionTime: s.completionTime }),
  };
}

/** The swarm at a glance, from what the supernode holds in memory (no I/O). */
export function buildStatus(s: StatusSources): SupernodeStatus {
  const now = s.clock.now();
  const peers = s.peers.list().slice(0, MAX_STATUS_PEERS).map((p) => {
    const connected = s.links.has(p.peerId);
    return {
      peerId: p.peerId,
      ...(p.nodeName === undefined ? {} : { nodeName: p.nodeName }),
      advertiseUrl: p.advertiseUrl,
      advertiseCheck: p.advertiseCheck,
      ...(p.zone === undefined ? {} : { zone: p.zone }),
      lastSeenMs: p.lastSeenMs,
      connected,
      healthy: connected && now - p.lastSeenMs <= PEER_HEALTHY_WITHIN_MS,
      recentBytesPerSec: Math.round(s.throughput.recentBytesPerSec(p.peerId)),
      receivedBytes: s.throughput.totalOf(p.peerId),
    };
  });
  const held = s.store.list();
  // Copies cost O(holders × pieces / 8) per blob: only the most recently used blobs are looked at.
  const recent = held.length <= MAX_STATUS_BLOBS ? held : [...held].sort((a, b) => b.lastAccessMs - a.lastAccessMs).slice(0, MAX_STATUS_BLOBS);
  const swarm: StatusBlob[] = recent.map((b) => {
    const copies = s.scheduler.copies(b.digest);
    return { digest: b.digest, sizeBytes: b.sizeBytes, cached: b.complete, copies: copies?.complete ?? 0, holders: copies?.holders ?? 0 };
  });
  swarm.sort((a, b) => b.copies - a.copies || b.holders - a.holders || b.sizeBytes - a.sizeBytes);
  const usage = s.store.usage();
  const fetchedBytes = s.fetchedBytes();
  const deliveredBytes = s.throughput.total;
  const imagePullJobs = s.imagePullJobs?.(MAX_STATUS_IMAGE_PULL_JOBS).map(imagePullJobSummary);
  return {
    generatedAt: new Date(now).toISOString(),
    peers,
    blobs: {
      count: held.length,
      bytes: held.reduce((sum, b) => sum + b.sizeBytes, 0),
      inflight: s.tasks.inflightCount,
      ...(usage.quotaBytes === undefined ? {} : { quotaBytes: usage.quotaBytes }),
      swarm,
      truncated: held.length > recent.length,
    },
    registry: { fetchedBytes, deliveredBytes, savedBytes: Math.max(0, deliveredBytes - fetchedBytes) },
    preheat: s.preheat.recent(MAX_STATUS_PREHEAT_JOBS).map(preheatSummary),
    ...(imagePullJobs === undefined ? {} : { imagePullJobs }),
  };
}

/** The page: one static file, read once (no build step; it fetches GET /api/v1/status itself). */
const STATUS_PAGE_HTML = readFileSync(new URL('../../../src/routes/status-page.html', import.meta.url));

/**
 * Headers of the page: its inline script and style only, requests to this
 * origin only (the token it holds can go nowhere else), never framed.
 */
const STATUS_PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
};

/**
 * `GET /api/v1/status` (token required like every API route) and the status
 * page at STATUS_PAGE_PATH (public: a browser cannot send the token header on
 * a navigation; the page asks for the token and sends it with its fetches).
 */
export async function statusRoutes(app: FastifyInstance, options: { sources: StatusSources }): Promise<void> {
  app.get(`${API_PREFIX}/status`, async (): Promise<SupernodeStatus> => buildStatus(options.sources));
  app.get(STATUS_PAGE_PATH, async (_request, reply) => reply.headers(STATUS_PAGE_HEADERS).send(STATUS_PAGE_HTML));
}
