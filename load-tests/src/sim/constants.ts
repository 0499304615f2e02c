/**
 * Every timer and limit the simulator uses, taken from the services' code: imported where
 * the service exports it, read from the service's source where it is module-private (a
 * `const NAME = <number>;` line). A constant that is no longer in the source makes the
 * simulator refuse to run (`ModelOutOfDateError`): the code changed and the model must be
 * revisited, never silently kept on an old number.
 *
 * containerd's layer concurrency is not ours and not a constant: `ctr images pull` (what
 * bench:swarm runs) fetches every layer at once (--max-concurrent-downloads 0), the CRI
 * plugin 3 at a time (max_concurrent_downloads); it is a simulation parameter.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PIECE_WAIT_MS } from '@shoal/core';
import { DEFAULT_MAX_UPLOADS, DEFAULT_PIECE_WINDOW } from '@shoal/peer';
import { DEFAULT_FIRST_BYTE_TIMEOUT_MS } from '@shoal/proxy';
import { defaultFetchesPerRegistry } from '@shoal/supernode';

export class ModelOutOfDateError extends Error {
  readonly code = 'SHOAL_SIM_MODEL_OUT_OF_DATE';
  constructor(message: string) {
    super(message);
    this.name = 'ModelOutOfDateError';
  }
}

/** The repository root, from load-tests/dist/sim/. */
const REPO = new URL('../../../', import.meta.url);

/** Exported constants a module-private one may be defined as (`const NAME = PIECE_WAIT_MS;`). */
const KNOWN_CONSTANTS: Readonly<Record<string, number>> = { PIECE_WAIT_MS };

/** `const NAME = <number>;` (underscores allowed), or `= <a KNOWN_CONSTANTS name> [* or / <number>];`, from a service's TypeScript source. */
export function sourceConstant(relativePath: string, name: string): number {
  const path = fileURLToPath(new URL(relativePath, REPO));
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new ModelOutOfDateError(`the simulator models ${name} of ${relativePath}, which is gone: update load-tests/src/sim`);
  }
  const alias = new RegExp(`^(?:export )?const ${name}(?:: number)? = ([A-Z][A-Z0-9_]*)(?:\\s*([*/])\\s*([0-9_]+))?;`, 'm').exec(text);
  const known = alias?.[1] === undefined ? undefined : KNOWN_CONSTANTS[alias[1]];
  if (known !== undefined && alias !== null) {
    const factor = alias[3] === undefined ? 1 : Number(alias[3].replace(/_/g, ''));
    return alias[2] === '/' ? known / factor : known * factor;
  }
  const m = new RegExp(`^(?:export )?const ${name}(?:: number)? = ([0-9_]+(?:\\s*\\*\\s*[0-9_]+)*);`, 'm').exec(text);
  if (m === null) throw new ModelOutOfDateError(`${relativePath} no longer defines ${name} as a number: the simulator's model of it is out of date (load-tests/src/sim)`);
  return (m[1] as string).split('*').map((f) => Number(f.trim().replace(/_/g, ''))).reduce((a, b) => a * b, 1);
}

const SWARM_TS = 'services/supernode/src/swarm.ts';
const DOWNLOAD_TS = 'services/peer/src/download.ts';
const SEED_BLOBS_TS = 'services/supernode/src/routes/blobs.ts';
const PEER_BLOBS_TS = 'services/peer/src/routes/blobs.ts';

/** What the model takes from the code, read once. */
export function modelConstants(): ModelConstants {
  return {
    pieceWaitMs: PIECE_WAIT_MS,
    peerMaxUploads: DEFAULT_MAX_UPLOADS,
    pieceWindow: DEFAULT_PIECE_WINDOW,
    firstByteTimeoutMs: DEFAULT_FIRST_BYTE_TIMEOUT_MS,
    // The model has one registry: BlobTasks' cap per registry is the one that binds.
    supernodeMaxConcurrentFetches: defaultFetchesPerRegistry(),
    urgentAhead: sourceConstant(DOWNLOAD_TS, 'URGENT_AHEAD'),
    idlePollMinMs: sourceConstant(DOWNLOAD_TS, 'IDLE_POLL_MIN_MS'),
    idlePollMaxMs: sourceConstant(DOWNLOAD_TS, 'IDLE_POLL_MAX_MS'),
    scheduleWaitMs: sourceConstant(DOWNLOAD_TS, 'SCHEDULE_WAIT_MS'),
    frontierPerCall: sourceConstant(SWARM_TS, 'FRONTIER_PER_CALL'),
    maxFrontierClaimsPerChild: sourceConstant(SWARM_TS, 'MAX_FRONTIER_CLAIMS_PER_CHILD'),
    maxFrontierClaimsAlone: sourceConstant(SWARM_TS, 'MAX_FRONTIER_CLAIMS_ALONE'),
    aloneAfterMs: sourceConstant(SWARM_TS, 'ALONE_AFTER_MS'),
    shareClaimsFromPieceMs: sourceConstant(SWARM_TS, 'SHARE_CLAIMS_FROM_PIECE_MS'),
    frontierAhead: sourceConstant(SWARM_TS, 'FRONTIER_AHEAD'),
    frontierMinAhead: sourceConstant(SWARM_TS, 'FRONTIER_MIN_AHEAD'),
    frontierHorizonMs: sourceConstant(SWARM_TS, 'FRONTIER_HORIZON_MS'),
    frontierTtlMs: sourceConstant(SWARM_TS, 'FRONTIER_TTL_MS'),
    claimedPieceSeedDelayMs: sourceConstant(SWARM_TS, 'CLAIMED_PIECE_SEED_DELAY_MS'),
    wakesPerChange: sourceConstant(SWARM_TS, 'WAKES_PER_CHANGE'),
    seedSendsAtOnce: sourceConstant(SEED_BLOBS_TS, 'SEED_SENDS_AT_ONCE'),
    maxCutThroughSends: sourceConstant(SEED_BLOBS_TS, 'MAX_CUT_THROUGH_SENDS'),
    sendProgressEveryMs: sourceConstant(SEED_BLOBS_TS, 'SEND_PROGRESS_EVERY_MS'),
    sendDrainProgressMs: sourceConstant(SEED_BLOBS_TS, 'SEND_DRAIN_PROGRESS_MS'),
    peerSendsAtOnce: sourceConstant(PEER_BLOBS_TS, 'PEER_SENDS_AT_ONCE'),
    relaysAtOnce: sourceConstant(PEER_BLOBS_TS, 'RELAYS_AT_ONCE'),
    relayWaitMaxMs: sourceConstant(PEER_BLOBS_TS, 'RELAY_WAIT_MAX_MS'),
  };
}

export interface ModelConstants {
  /** @shoal/core PIECE_WAIT_MS: the seed holds a request for a piece it lacks this long. */
  pieceWaitMs: number;
  /** @shoal/peer DEFAULT_MAX_UPLOADS: piece requests a peer takes at once (sending or waiting their turn) before 'busy'. */
  peerMaxUploads: number;
  /** @shoal/peer DEFAULT_PIECE_WINDOW: pieces a download keeps in flight. */
  pieceWindow: number;
  /** @shoal/proxy DEFAULT_FIRST_BYTE_TIMEOUT_MS: the proxy goes to the registry when the swarm sent no byte of a blob by then. */
  firstByteTimeoutMs: number;
  /** @shoal/supernode BlobTasks: back-to-source fetches at once from one registry (defaultFetchesPerRegistry). */
  supernodeMaxConcurrentFetches: number;
  /** services/peer download.ts: the next missing pieces (from the reader's cursor) a schedule call marks urgent. */
  urgentAhead: number;
  /** services/peer download.ts: naps after an empty answer that came back at once, from min doubling to max; an answer that did not fill the window naps max (or until a piece lands). */
  idlePollMinMs: number;
  idlePollMaxMs: number;
  /** services/peer download.ts: how long the supernode may hold a schedule call with nothing to assign (the long-poll). */
  scheduleWaitMs: number;
  /**
   * services/supernode swarm.ts: the frontier long-poll (pieces per answer, live claims per
   * child over all blobs, how far past the fill point — at most frontierAhead, at least
   * frontierMinAhead, else what the registry delivers within frontierHorizonMs at the blob's
   * arrival rate —, claim lifetime, hold-back after the copy's last progress).
   */
  frontierPerCall: number;
  maxFrontierClaimsPerChild: number;
  /** services/supernode swarm.ts: live claims of a child that is a blob's only member and asks again. */
  maxFrontierClaimsAlone: number;
  /** Swarm ALONE_AFTER_MS: a child waiting at the seed this long, and the only member of another blob, is alone there too. */
  aloneAfterMs: number;
  /** Swarm SHARE_CLAIMS_FROM_PIECE_MS: a lone child's claims are shared out over its blobs where a piece takes this long to arrive. */
  shareClaimsFromPieceMs: number;
  frontierAhead: number;
  frontierMinAhead: number;
  frontierHorizonMs: number;
  frontierTtlMs: number;
  claimedPieceSeedDelayMs: number;
  /** Held schedule calls one change wakes, oldest first (Swarm.changed). */
  wakesPerChange: number;
  /** services/supernode routes/blobs.ts: piece sends at once (the rest wait in arrival order); progress reports while a send is open, and how long after its last byte left. */
  seedSendsAtOnce: number;
  /** services/supernode routes/blobs.ts: cut-through sends at once (outside the send slots); a request past it waits for the whole piece. */
  maxCutThroughSends: number;
  sendProgressEveryMs: number;
  sendDrainProgressMs: number;
  /** services/peer routes/blobs.ts: piece sends at once; up to peerMaxUploads accepted (sending or waiting), more refused 'busy'. */
  peerSendsAtOnce: number;
  /** services/peer routes/blobs.ts: sends of pieces still arriving (relays) outside the send slots; past it a relay takes a slot. */
  relaysAtOnce: number;
  /** services/peer routes/blobs.ts: the longest a request waits at a peer for its piece to begin arriving there (a chain's request ahead). */
  relayWaitMaxMs: number;
}
