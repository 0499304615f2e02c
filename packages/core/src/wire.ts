import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { BadRequestError } from './errors.js';
import { pieceLayout } from './pieces.js';
import { PLATFORM_PATTERN } from './platform.js';

/**
 * The wire contract between peers and supernodes. HTTP for bytes, a WebSocket
 * per peer for membership and piece announcements. Everything that arrives
 * from another process is parsed here, at the edge, into typed values.
 *
 * Supernode HTTP (all under API_PREFIX, all require the cluster token):
 *   POST /tasks                          TaskRequest → TaskInfo. Starts (or joins)
 *                                        the one back-to-source download of a blob.
 *                                        Registry credentials ride in
 *                                        HEADER.registryAuthorization.
 *   GET  /blobs/:digest/info             → TaskInfo (404 if the supernode never saw it)
 *   GET  /blobs/:digest/pieces/:index    → the piece's bytes; HEADER.pieceSha256 carries
 *                                        its hash. A piece still on its way from the
 *                                        registry is sent from its first byte as it
 *                                        arrives (waiting up to PIECE_WAIT_MS for it to
 *                                        begin): chunked, with HEADER.pieceSha256 as a
 *                                        trailer (announced in `Trailer`) once the whole
 *                                        piece matched; the receiver checks the bytes
 *                                        against it before using them.
 *   GET  /blobs/:digest/pieces/:index/sha256
 *                                        → PieceHash, once the supernode verified the piece
 *                                        (waiting up to PIECE_WAIT_MS): the hash a child
 *                                        checks a peer's cut-through copy against.
 *   POST /blobs/:digest/schedule         ScheduleRequest → ScheduleResponse: which pieces
 *                                        to fetch next and from whom (peers first, the
 *                                        supernode's cache as the seed of last resort);
 *                                        carries the pieces the peer verified since its last
 *                                        call and the parents that failed it.
 *   GET  /peers/ws                       WebSocket: PeerMessage up, SupernodeMessage down.
 * Peer HTTP:
 *   GET  /blobs/:digest/pieces/:index    → a piece held by this peer, or 404. A piece still
 *                                        arriving here is sent as it comes (waiting up to
 *                                        RELAY_WAIT_MS for it to begin); its body ends only
 *                                        once this peer's copy matched, else it is cut. The
 *                                        receiver checks it against the supernode's hash.
 *   GET  /identity?nonce=                → PeerIdentity: the supernode's check that the peer
 *                                        registering under an advertised URL answers there.
 *   GET  /blobs/:digest?registry=&repository=
 *                                        → the whole blob (Range honoured), for a proxy
 *                                        that runs apart from its peer.
 */

export const API_PREFIX = '/api/v1';

export const HEADER = {
  /**
   * The cluster's shared secret itself: accepted from operators' tools (`shoal status`,
   * `shoal preheat`); peers and node agents never send it (they sign, HEADER.signature).
   */
  token: 'x-shoal-token',
  /** A request signature under a key derived from the cluster token (cluster-auth.ts). */
  signature: 'x-shoal-signature',
  /** The registry credential the client (containerd) presented, passed along for back-to-source. */
  registryAuthorization: 'x-shoal-registry-authorization',
  /** Lowercase hex SHA-256 of the piece in the body. */
  pieceSha256: 'x-shoal-piece-sha256',
  /** Where the proxy got a blob: local | peer | supernode | upstream. */
  source: 'x-shoal-source',
  /** Set on tag resolutions answered from the last known digest while the registry is down. */
  stale: 'x-shoal-stale',
} as const;

export type BlobSource = 'local' | 'peer' | 'supernode' | 'upstream';

/**
 * Authentication: every route but /healthz, /readyz and /metrics needs a request
 * signed under the cluster key (HEADER.signature, see cluster-auth.ts) or, from
 * operators' tools to a supernode, the token itself (HEADER.token).
 */

/**
 * How long a supernode holds a piece request open for a piece still downloading. For
 * the piece arriving now it is measured from the last byte of the blob that came from
 * the registry: a fetch that moves, however slowly, keeps that request held.
 */
export const PIECE_WAIT_MS = 30_000;

const DigestSchema = Type.String({ pattern: '^sha256:[a-f0-9]{64}$' });
const Sha256Hex = Type.String({ pattern: '^[a-f0-9]{64}$' });
const PeerId = Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$' });
/** A peer's secret: 32 random bytes in base64url (43 characters); longer is accepted. */
export const PEER_SECRET_PATTERN = '^[A-Za-z0-9_-]{43,128}$';
/** The nonce of an identity challenge: 16 random bytes in hex. */
export const IDENTITY_NONCE_PATTERN = '^[0-9a-f]{32}$';

/** A peer's answer to `GET /identity?nonce=`: who answers at this address. */
export const PeerIdentitySchema = Type.Object({ peerId: PeerId, nonce: Type.String({ pattern: IDENTITY_NONCE_PATTERN }) }, { additionalProperties: false });
export type PeerIdentity = Static<typeof PeerIdentitySchema>;
/** A preheat job id: a random UUID. */
export const PREHEAT_JOB_ID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
const PreheatJobId = Type.String({ pattern: PREHEAT_JOB_ID_PATTERN });
/** A Kubernetes node name: a lowercase RFC 1123 subdomain (kubelet's rule), at most MAX_NODE_NAME_LENGTH characters. */
export const NODE_NAME_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
export const MAX_NODE_NAME_LENGTH = 253;
const NodeNameSchema = Type.String({ minLength: 1, maxLength: MAX_NODE_NAME_LENGTH, pattern: NODE_NAME_PATTERN });
const NODE_NAME_RE = new RegExp(NODE_NAME_PATTERN);

/** Whether `name` is a valid Kubernetes node name (lowercase RFC 1123 subdomain, ≤ 253 characters). */
export function isNodeName(name: string): boolean {
  return name.length >= 1 && name.length <= MAX_NODE_NAME_LENGTH && NODE_NAME_RE.test(name);
}
/** Longest blob we accept metadata for: 64 GiB. */
export const MAX_BLOB_SIZE_BYTES = 64 * 1024 ** 3;

export const TaskRequestSchema = Type.Object(
  {
    digest: DigestSchema,
    registry: Type.String({ minLength: 1, maxLength: 260 }),
    repository: Type.String({ minLength: 1, maxLength: 255 }),
    /** Size as the registry told the proxy, when known (a HEAD). */
    sizeBytes: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_BLOB_SIZE_BYTES })),
    /** The peer asking, so the scheduler can count it. */
    peerId: Type.Optional(PeerId),
  },
  { additionalProperties: false },
);
export type TaskRequest = Static<typeof TaskRequestSchema>;

/**
 * Longest a supernode holds a task call (`POST /tasks?waitMs=`) for a blob
 * whose fetch from the registry has not begun, ms. Then it answers 202 with a
 * TaskWaiting, and the node asks again: a call is never silent for long, so
 * neither side's idle timers end a wait that is only a queue.
 */
export const MAX_TASK_WAIT_MS = 10_000;

/**
 * A supernode's answer (202) to a task call for a blob whose fetch from the
 * registry has not begun: it waits for one of the supernode's fetch slots
 * (`queued`), or has one and waits for the registry's answer (`starting`).
 */
export const TaskWaitingSchema = Type.Object(
  {
    digest: DigestSchema,
    phase: Type.Union([Type.Literal('queued'), Type.Literal('starting')]),
    /** Fetches waiting ahead of this one for the slot it needs. */
    ahead: Type.Integer({ minimum: 0 }),
    /** How long this blob has waited since it was first asked for, ms. */
    waitedMs: Type.Integer({ minimum: 0 }),
    /**
     * Queued only: ms since a byte last came from the registry to any fetch
     * this one waits behind (a slot frees when one of them ends): small while
     * the queue moves. Absent when none runs.
     */
    aheadQuietMs: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);
export type TaskWaiting = Static<typeof TaskWaitingSchema>;

/** The supernode's hash of one piece it verified (GET /blobs/:digest/pieces/:index/sha256). */
export const PieceHashSchema = Type.Object({ sha256: Sha256Hex }, { additionalProperties: false });
export type PieceHash = Static<typeof PieceHashSchema>;

export const TaskInfoSchema = Type.Object(
  {
    digest: DigestSchema,
    sizeBytes: Type.Integer({ minimum: 0, maximum: MAX_BLOB_SIZE_BYTES }),
    pieceSizeBytes: Type.Integer({ minimum: 1 }),
    pieceCount: Type.Integer({ minimum: 0 }),
    /** Hash of each piece once known (the supernode learns them as the blob streams in). */
    pieceSha256: Type.Array(Type.Union([Sha256Hex, Type.Null()]), { maxItems: 1_000_000 }),
    complete: Type.Boolean(),
    /** Set when the back-to-source download failed: the blob cannot be had from the swarm. */
    error: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: false },
);
export type TaskInfo = Static<typeof TaskInfoSchema>;

/**
 * A blob's description from a supernode or a peer, checked against this
 * process's piece layout: its piece size, piece count and hash list must be
 * what pieceLayout gives for its size. One that differs (another version's
 * layout, or a broken sender) is refused, so a node never mixes two meanings of
 * "piece i" in one store; it fetches the blob some other way (the registry).
 */
export function parseTaskInfo(value: unknown, what: string): TaskInfo {
  const info = parseWire(TaskInfoSchema, value, what);
  const layout = pieceLayout(info.sizeBytes);
  if (info.pieceSizeBytes !== layout.pieceSizeBytes || info.pieceCount !== layout.pieceCount || info.pieceSha256.length !== layout.pieceCount) {
    throw new BadRequestError(
      `invalid ${what}: ${info.pieceCount} pieces of ${info.pieceSizeBytes} bytes (${info.pieceSha256.length} hashes) for a blob of ${info.sizeBytes} bytes, ` +
        `which this version cuts into ${layout.pieceCount} of ${layout.pieceSizeBytes} (a Shoal version with another piece layout?)`,
    );
  }
  return info;
}

export const FailureKindSchema = Type.Union([
  Type.Literal('bad-piece'),
  Type.Literal('stalled'),
  Type.Literal('unreachable'),
  Type.Literal('missing'),
  Type.Literal('busy'),
]);
export type FailureKindWire = Static<typeof FailureKindSchema>;

/** Longest a supernode holds a schedule answer for (ScheduleRequest.waitMs), ms. */
export const MAX_SCHEDULE_WAIT_MS = 5_000;
/** Pieces a peer may ask for or announce in one schedule call. */
export const MAX_SCHEDULE_PIECES = 4096;
/** Failed piece transfers a peer may report in one schedule call. */
export const MAX_REPORTED_FAILURES = 256;

export const ScheduleRequestSchema = Type.Object(
  {
    peerId: PeerId,
    /** How this peer is reached by others, in case its WebSocket registration has not landed yet. */
    advertiseUrl: Type.Optional(Type.String({ maxLength: 300 })),
    zone: Type.Optional(Type.String({ maxLength: 100 })),
    /** Free slots in the peer's download window. */
    limit: Type.Integer({ minimum: 0, maximum: 256 }),
    /**
     * When there is nothing to assign yet, the supernode may hold the answer this
     * long (ms) and answer as soon as something can be assigned: a long-poll
     * instead of the peer asking again and again.
     */
    waitMs: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_SCHEDULE_WAIT_MS })),
    /** Pieces a reader is waiting for, most urgent first. */
    urgent: Type.Optional(Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 64 })),
    /** Pieces verified since the last call. */
    have: Type.Optional(Type.Array(Type.Integer({ minimum: 0 }), { maxItems: MAX_SCHEDULE_PIECES })),
    failures: Type.Optional(
      Type.Array(
        Type.Object({ parentId: Type.String({ maxLength: 64 }), piece: Type.Integer({ minimum: 0 }), kind: FailureKindSchema }, { additionalProperties: false }),
        { maxItems: MAX_REPORTED_FAILURES },
      ),
    ),
  },
  { additionalProperties: false },
);
export type ScheduleRequest = Static<typeof ScheduleRequestSchema>;

export const ParentCandidateSchema = Type.Union([
  Type.Object({ kind: Type.Literal('peer'), peerId: PeerId, url: Type.String({ maxLength: 300 }) }, { additionalProperties: false }),
  Type.Object({ kind: Type.Literal('seed') }, { additionalProperties: false }),
]);

export const ScheduleResponseSchema = Type.Object(
  {
    assignments: Type.Array(
      Type.Object(
        {
          piece: Type.Integer({ minimum: 0 }),
          /**
           * Absent only for a piece still on its way to the seed: the seed's answer carries
           * it, and for a peer's copy the child asks the seed (GET …/pieces/:index/sha256).
           */
          sha256: Type.Optional(Sha256Hex),
          candidates: Type.Array(ParentCandidateSchema, { maxItems: 16 }),
        },
        { additionalProperties: false },
      ),
      { maxItems: 256 },
    ),
    /** The supernode holds the whole blob, verified against its digest. */
    seedComplete: Type.Boolean(),
    /** The back-to-source download failed: the swarm will not get the rest. */
    error: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: false },
);
export type ScheduleResponse = Static<typeof ScheduleResponseSchema>;

/** `Always` pulls; `IfNotPresent` asks the runtime (CRI ImageStatus) first and pulls only an image it lacks. */
export const ImagePullPolicySchema = Type.Union([Type.Literal('Always'), Type.Literal('IfNotPresent')]);
export type ImagePullPolicy = Static<typeof ImagePullPolicySchema>;

/**
 * What a node's container runtime did with a prewarmed image: `pulled` (CRI PullImage
 * succeeded), `present` (IfNotPresent, and ImageStatus found it), `unavailable` (no
 * runtime socket on the node: the image is in Shoal's store only), `failed`.
 */
export const RuntimePullOutcomeSchema = Type.Union([Type.Literal('pulled'), Type.Literal('present'), Type.Literal('unavailable'), Type.Literal('failed')]);
export type RuntimePullOutcome = Static<typeof RuntimePullOutcomeSchema>;

export const PeerMessageSchema = Type.Union([
  Type.Object(
    {
      type: Type.Literal('register'),
      peerId: PeerId,
      advertiseUrl: Type.String({ maxLength: 300 }),
      zone: Type.Optional(Type.String({ maxLength: 100 })),
      /** The Kubernetes node this peer runs on (`shoal node --node-name`); peers before it send none. */
      nodeName: Type.Optional(NodeNameSchema),
      /**
       * The peer's own secret (random, kept in its data dir): while a peer id is live, a
       * second registration of it is accepted only with the same secret.
       */
      peerSecret: Type.Optional(Type.String({ pattern: PEER_SECRET_PATTERN })),
    },
    { additionalProperties: false },
  ),
  Type.Object({ type: Type.Literal('heartbeat') }, { additionalProperties: false }),
  Type.Object(
    {
      type: Type.Literal('have'),
      digest: DigestSchema,
      pieces: Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 100_000 }),
    },
    { additionalProperties: false },
  ),
  /**
   * Pieces whose first bytes have landed at the peer: it passes them on as they come
   * (cut-through), so children may be sent to it for them already. Followed by `have`
   * once a piece matched, or `arrivalFailed` when it did not.
   */
  Type.Object(
    {
      type: Type.Literal('arriving'),
      digest: DigestSchema,
      pieces: Type.Array(Type.Integer({ minimum: 0 }), { maxItems: MAX_SCHEDULE_PIECES }),
    },
    { additionalProperties: false },
  ),
  /** Pieces announced `arriving` that stopped before they matched: the peer does not hold them. */
  Type.Object(
    {
      type: Type.Literal('arrivalFailed'),
      digest: DigestSchema,
      pieces: Type.Array(Type.Integer({ minimum: 0 }), { maxItems: MAX_SCHEDULE_PIECES }),
    },
    { additionalProperties: false },
  ),
  /** The peer no longer holds any piece of the blob (evicted, or a download given up): stop sending children to it. */
  Type.Object({ type: Type.Literal('drop'), digest: DigestSchema }, { additionalProperties: false }),
  /** The answer to one blob of a `prefetch`: it is complete in this node's store (ok), or why not. */
  Type.Object(
    {
      type: Type.Literal('prefetched'),
      job: PreheatJobId,
      digest: DigestSchema,
      ok: Type.Boolean(),
      error: Type.Optional(Type.String({ maxLength: 2000 })),
    },
    { additionalProperties: false },
  ),
  /** While a `prefetch` job's blobs fill this node: bytes of them verified in its store so far (about once a second). */
  Type.Object({ type: Type.Literal('prefetchProgress'), job: PreheatJobId, bytesDone: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }),
  /** The answer to a `runtimePull`: what containerd (CRI) did with the image. */
  Type.Object(
    {
      type: Type.Literal('runtimePulled'),
      job: PreheatJobId,
      outcome: RuntimePullOutcomeSchema,
      /** containerd's image id (`sha256:...`), when it has the image. */
      imageRef: Type.Optional(Type.String({ maxLength: 300 })),
      durationMs: Type.Integer({ minimum: 0 }),
      error: Type.Optional(Type.String({ maxLength: 2000 })),
    },
    { additionalProperties: false },
  ),
]);
export type PeerMessage = Static<typeof PeerMessageSchema>;

/** Blobs one `prefetch` frame names at most (a job with more sends several frames): keeps frames far below MAX_WS_FRAME_BYTES. */
export const MAX_PREFETCH_BLOBS_PER_FRAME = 256;

export const PrefetchBlobSchema = Type.Object(
  {
    digest: DigestSchema,
    sizeBytes: Type.Integer({ minimum: 0, maximum: MAX_BLOB_SIZE_BYTES }),
    registry: Type.String({ minLength: 1, maxLength: 260 }),
    repository: Type.String({ minLength: 1, maxLength: 255 }),
  },
  { additionalProperties: false },
);
export type PrefetchBlob = Static<typeof PrefetchBlobSchema>;

export const SupernodeMessageSchema = Type.Union([
  Type.Object({ type: Type.Literal('registered'), peerId: PeerId }, { additionalProperties: false }),
  /** Preheat into nodes: fill the node's store with these blobs from the swarm; one `prefetched` answer per blob. */
  Type.Object(
    {
      type: Type.Literal('prefetch'),
      job: PreheatJobId,
      blobs: Type.Array(PrefetchBlobSchema, { minItems: 1, maxItems: MAX_PREFETCH_BLOBS_PER_FRAME }),
    },
    { additionalProperties: false },
  ),
  /**
   * Preheat into the runtime: every blob of the job is in this node's store; have the
   * container runtime pull the image through CRI (it reaches the node's own proxy through
   * hosts.toml). One `runtimePulled` answer.
   */
  Type.Object(
    {
      type: Type.Literal('runtimePull'),
      job: PreheatJobId,
      image: Type.String({ minLength: 1, maxLength: 600 }),
      policy: ImagePullPolicySchema,
      /** base64 `user:password` for the registry (CRI AuthConfig.auth); never logged. */
      auth: Type.Optional(Type.String({ maxLength: 8192 })),
    },
    { additionalProperties: false },
  ),
  Type.Object({ type: Type.Literal('error'), code: Type.String({ maxLength: 100 }), message: Type.String({ maxLength: 2000 }) }, { additionalProperties: false }),
]);
export type SupernodeMessage = Static<typeof SupernodeMessageSchema>;

/** Largest WebSocket frame either side accepts. */
export const MAX_WS_FRAME_BYTES = 1024 * 1024;

/** Problems named in a BadRequestError from parseWire. */
const MAX_REPORTED_PROBLEMS = 3;

/** Validates a decoded JSON value against a schema; the error names the first few problems. */
export function parseWire<T extends TSchema>(schema: T, value: unknown, what: string): Static<T> {
  if (Value.Check(schema, value)) return value;
  // Value.Errors is lazy: stop at the first few. Collecting them all cost ~0.8 s
  // of blocked event loop for a 64 KiB body with thousands of wrong items.
  const problems: string[] = [];
  for (const e of Value.Errors(schema, value)) {
    problems.push(`${e.path || '/'} ${e.message}`);
    if (problems.length >= MAX_REPORTED_PROBLEMS) break;
  }
  throw new BadRequestError(`invalid ${what}: ${problems.join('; ')}`);
}

/**
 * Deepest nesting of arrays and objects a frame may have. Every message is 2
 * or 3 levels deep; JSON.parse of a 1 MiB frame of nested brackets takes
 * ~0.5 s, so such frames are refused before parsing.
 */
export const MAX_FRAME_JSON_DEPTH = 16;

/** True when `text` (JSON or not) opens more than `max` arrays/objects at once outside strings. Linear. */
function nestedDeeperThan(text: Buffer, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/** Parses one WebSocket text frame (bounded size and nesting, JSON, schema). */
export function parseFrame<T extends TSchema>(schema: T, data: Buffer | string, what: string): Static<T> {
  const length = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  if (length > MAX_WS_FRAME_BYTES) throw new BadRequestError(`${what} frame of ${length} bytes is too large`);
  if (nestedDeeperThan(typeof data === 'string' ? Buffer.from(data) : data, MAX_FRAME_JSON_DEPTH)) {
    throw new BadRequestError(`${what} frame is nested deeper than ${MAX_FRAME_JSON_DEPTH} levels`);
  }
  let value: unknown;
  try {
    value = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch {
    throw new BadRequestError(`${what} frame is not JSON`);
  }
  return parseWire(schema, value, what);
}

/*
 * Preheat (supernode HTTP, under API_PREFIX, cluster token required):
 *   POST /preheat        PreheatRequest → 202 PreheatJob. Resolves the image (tag →
 *                        manifest; an index → the manifests of the requested platforms)
 *                        and starts the back-to-source download of its config and layer
 *                        blobs through the same BlobTasks peers use. Registry credentials
 *                        ride in HEADER.registryAuthorization.
 *   GET  /preheat/:id    → PreheatJob (404 once the supernode has forgotten the job).
 * With `nodes` (all, or node names of live peers; an unknown name is a 404 at request time),
 * once the cache holds the blobs each chosen peer gets `prefetch` frames on its WebSocket and
 * answers one `prefetched` per blob; PreheatJob.nodes follows each node.
 */

/** Platforms one preheat request may name. */
export const MAX_PREHEAT_PLATFORMS = 32;
/** Distinct blobs one preheat job may hold (configs and layers of every chosen platform). */
export const MAX_PREHEAT_BLOBS = 4096;
/** Nodes one preheat job may fill (named, or `all` at the moment of the request). */
export const MAX_PREHEAT_NODES = 5000;

/** `all`: every peer registered when the request arrives; else these node names. */
export const PreheatNodesSchema = Type.Union([Type.Literal('all'), Type.Array(NodeNameSchema, { minItems: 1, maxItems: MAX_PREHEAT_NODES })]);
export type PreheatNodes = Static<typeof PreheatNodesSchema>;

export const PreheatRequestSchema = Type.Object(
  {
    /** `[host[:port]/]repo[:tag][@digest]`, as docker and containerd read it. */
    image: Type.String({ minLength: 1, maxLength: 600 }),
    /** For an index: only these platforms (default: every platform but attestations). */
    platforms: Type.Optional(Type.Array(Type.String({ pattern: PLATFORM_PATTERN }), { minItems: 1, maxItems: MAX_PREHEAT_PLATFORMS })),
    /** Also fill these nodes' own stores once the supernode's cache holds the blobs. */
    nodes: Type.Optional(PreheatNodesSchema),
    /** With nodes: then have each node's container runtime pull the image through CRI, with this policy. */
    runtimePull: Type.Optional(ImagePullPolicySchema),
  },
  { additionalProperties: false },
);
export type PreheatRequest = Static<typeof PreheatRequestSchema>;

export const PreheatBlobStateSchema = Type.Union([Type.Literal('pending'), Type.Literal('running'), Type.Literal('done'), Type.Literal('failed')]);
export type PreheatBlobState = Static<typeof PreheatBlobStateSchema>;

export const PreheatJobStateSchema = Type.Union([Type.Literal('running'), Type.Literal('done'), Type.Literal('failed')]);
export type PreheatJobState = Static<typeof PreheatJobStateSchema>;

export const PreheatBlobSchema = Type.Object(
  {
    digest: DigestSchema,
    sizeBytes: Type.Integer({ minimum: 0, maximum: MAX_BLOB_SIZE_BYTES }),
    state: PreheatBlobStateSchema,
    error: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: false },
);
export type PreheatBlob = Static<typeof PreheatBlobSchema>;

export const PreheatNodeStateSchema = Type.Object(
  {
    /** The node name (a peer registered without one: its peer id). */
    name: Type.String({ maxLength: MAX_NODE_NAME_LENGTH }),
    state: PreheatBlobStateSchema,
    /** Blobs complete in the node's store. */
    blobsDone: Type.Integer({ minimum: 0 }),
    /** Blobs the node was asked for (those the supernode's cache holds). */
    blobsTotal: Type.Integer({ minimum: 0 }),
    /** Bytes of those blobs verified in the node's store so far, and in all. */
    bytesDone: Type.Optional(Type.Integer({ minimum: 0 })),
    bytesTotal: Type.Optional(Type.Integer({ minimum: 0 })),
    /**
     * The runtime step, when one was asked for: `waiting` (store still filling),
     * `pulling` (CRI pull running), then the node's RuntimePullOutcome.
     */
    runtime: Type.Optional(Type.Union([Type.Literal('waiting'), Type.Literal('pulling'), RuntimePullOutcomeSchema])),
    error: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: false },
);
export type PreheatNodeState = Static<typeof PreheatNodeStateSchema>;

export const PreheatJobSchema = Type.Object(
  {
    id: Type.String({ pattern: PREHEAT_JOB_ID_PATTERN }),
    /** The reference as the client wrote it. */
    image: Type.String({ maxLength: 600 }),
    /** Platforms of the manifests chosen from an index (`os/arch[/variant]`); empty for a single manifest. */
    platforms: Type.Array(Type.String({ maxLength: 200 }), { maxItems: 1024 }),
    state: PreheatJobStateSchema,
    blobs: Type.Array(PreheatBlobSchema, { maxItems: MAX_PREHEAT_BLOBS }),
    /** Blobs of the image larger than the swarm carries (MAX_BLOB_SIZE_BYTES): not preheated; pulls take them from the registry. */
    tooLarge: Type.Optional(
      Type.Array(
        Type.Object({ digest: DigestSchema, sizeBytes: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }) }, { additionalProperties: false }),
        { maxItems: MAX_PREHEAT_BLOBS },
      ),
    ),
    /** Bytes of the blobs verified in the supernode's cache so far. */
    bytesDone: Type.Integer({ minimum: 0 }),
    bytesTotal: Type.Integer({ minimum: 0 }),
    /** ISO 8601. */
    startedAt: Type.String({ maxLength: 40 }),
    finishedAt: Type.Optional(Type.String({ maxLength: 40 })),
    message: Type.Optional(Type.String({ maxLength: 2000 })),
    /** Present when nodes were asked for: each node's own fill. */
    nodes: Type.Optional(Type.Array(PreheatNodeStateSchema, { maxItems: MAX_PREHEAT_NODES })),
  },
  { additionalProperties: false },
);
export type PreheatJob = Static<typeof PreheatJobSchema>;
