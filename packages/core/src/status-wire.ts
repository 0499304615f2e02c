import { Type, type Static } from '@sinclair/typebox';
import { PreheatJobStateSchema } from './wire.js';

/*
 * The supernode's status API (under API_PREFIX, cluster token required):
 *   GET /status   → SupernodeStatus: the swarm at a glance. `shoal status` and the
 *                   status page (GET /status, an HTML shell) read it and nothing else.
 * Every list is bounded (the constants below); a list cut short says so.
 */

/** Peers listed (the peer table holds at most this many too). */
export const MAX_STATUS_PEERS = 10_000;
/** Blobs listed: the most recently used, those with the most copies first. */
export const MAX_STATUS_BLOBS = 200;
/** Preheat jobs listed, newest first. */
export const MAX_STATUS_PREHEAT_JOBS = 20;
/** ImagePullJobs listed. */
export const MAX_STATUS_IMAGE_PULL_JOBS = 50;

const Bytes = Type.Integer({ minimum: 0 });
const Count = Type.Integer({ minimum: 0 });
const Text = (maxLength: number) => Type.String({ maxLength });

export const StatusPeerSchema = Type.Object(
  {
    peerId: Text(64),
    nodeName: Type.Optional(Text(253)),
    advertiseUrl: Text(2048),
    zone: Type.Optional(Text(253)),
    /** Whether the advertised URL is proven to be this peer's: only `bound` and `verified` peers are named as parents. */
    advertiseCheck: Type.Union([Type.Literal('bound'), Type.Literal('verified'), Type.Literal('checking'), Type.Literal('failed')]),
    /** Epoch milliseconds of the peer's last heartbeat, schedule call or registration. */
    lastSeenMs: Type.Number(),
    /** The peer's WebSocket to this supernode is open. */
    connected: Type.Boolean(),
    /** Connected and heard from within the last heartbeat interval and a half. */
    healthy: Type.Boolean(),
    /** Piece bytes the peer reported verified in the last minute, per second. */
    recentBytesPerSec: Type.Number({ minimum: 0 }),
    /** Piece bytes the peer reported verified since it registered here. */
    receivedBytes: Bytes,
  },
  { additionalProperties: false },
);
export type StatusPeer = Static<typeof StatusPeerSchema>;

export const StatusBlobSchema = Type.Object(
  {
    digest: Type.String({ pattern: '^sha256:[a-f0-9]{64}$' }),
    sizeBytes: Bytes,
    /** The supernode's cache holds the whole blob. */
    cached: Type.Boolean(),
    /** Live peers holding every piece. */
    copies: Count,
    /** Live peers holding at least one piece. */
    holders: Count,
  },
  { additionalProperties: false },
);
export type StatusBlob = Static<typeof StatusBlobSchema>;

export const StatusPreheatJobSchema = Type.Object(
  {
    id: Text(64),
    image: Text(600),
    state: PreheatJobStateSchema,
    blobsDone: Count,
    blobsTotal: Count,
    bytesDone: Bytes,
    bytesTotal: Bytes,
    /** Nodes asked to fill their own store, and those done. */
    nodesDone: Count,
    nodesTotal: Count,
    startedAt: Text(40),
    finishedAt: Type.Optional(Text(40)),
    message: Type.Optional(Text(2000)),
  },
  { additionalProperties: false },
);
export type StatusPreheatJob = Static<typeof StatusPreheatJobSchema>;

export const StatusImagePullJobSchema = Type.Object(
  {
    namespace: Text(253),
    name: Text(253),
    image: Type.Optional(Text(600)),
    desired: Count,
    active: Count,
    succeeded: Count,
    failed: Count,
    message: Type.Optional(Text(4000)),
    startTime: Type.Optional(Text(40)),
    completionTime: Type.Optional(Text(40)),
  },
  { additionalProperties: false },
);
export type StatusImagePullJob = Static<typeof StatusImagePullJobSchema>;

export const SupernodeStatusSchema = Type.Object(
  {
    /** ISO 8601, when the supernode built this answer. */
    generatedAt: Text(40),
    peers: Type.Array(StatusPeerSchema, { maxItems: MAX_STATUS_PEERS }),
    blobs: Type.Object(
      {
        /** Blobs in the supernode's cache (complete and partial) and their bytes. */
        count: Count,
        bytes: Bytes,
        /** Blobs being fetched from registries now. */
        inflight: Count,
        quotaBytes: Type.Optional(Bytes),
        /** The MAX_STATUS_BLOBS most recently used blobs of the cache, those with the most copies first. */
        swarm: Type.Array(StatusBlobSchema, { maxItems: MAX_STATUS_BLOBS }),
        /** More blobs than listed. */
        truncated: Type.Boolean(),
      },
      { additionalProperties: false },
    ),
    registry: Type.Object(
      {
        /** Blob bytes the supernode fetched from registries since it started. */
        fetchedBytes: Bytes,
        /** Piece bytes peers reported verified from the swarm since it started. */
        deliveredBytes: Bytes,
        /** deliveredBytes − fetchedBytes, at least 0: what the registry did not have to send. */
        savedBytes: Bytes,
      },
      { additionalProperties: false },
    ),
    preheat: Type.Array(StatusPreheatJobSchema, { maxItems: MAX_STATUS_PREHEAT_JOBS }),
    /** Undefined when this supernode does not run the ImagePullJob controller. */
    imagePullJobs: Type.Optional(Type.Array(StatusImagePullJobSchema, { maxItems: MAX_STATUS_IMAGE_PULL_JOBS })),
  },
  { additionalProperties: false },
);
export type SupernodeStatus = Static<typeof SupernodeStatusSchema>;
