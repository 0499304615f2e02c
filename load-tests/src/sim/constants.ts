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
import { DEFAULT_MAX_CONCURRENT_FETCHES } from '@shoal/supernode';

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

/** `const NAME = <number>;` (underscores allowed), or `= <a KNOWN_CONSTANTS name>;`, from a service's TypeScript source. */
export function sourceConstant(relativePath: string, name: string): number {
  const path = fileURLToPath(new URL(relativePath, REPO));
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new ModelOutOfDateError(`the simulator models ${name} of ${relativePath}, which is gone: update load-tests/src/sim`);
  }
  const alias = new RegExp(`^(?:export )?const ${name}(?:: number)? = ([A-Z][A-Z0-9_]*);`, 'm').exec(text)?.[1];
  const known = alias === undefined ? undefined : KNOWN_CONSTANTS[alias];
  if (known !== undefined) return known;
  const m = new RegExp(`^(?:export )?const ${name}(?:: number)? = ([0-9_]+(?:\\s*\\*\\s*[0-9_]+)*);`, 'm').exec(text);
  if (m === null) throw new ModelOutOfDateError(`${relativePath} no longer defines ${name} as a number: the simulator's model of it is out of date (load-tests/src/sim)`);
  return (m[1] as string).split('*').map((f) => Number(f.trim().replace(/_/g, ''))).reduce((a, b) => a * b, 1);
}

const SWARM_TS = 'services/supernode/src/swarm.ts';
const DOWNLOAD_TS = 'services/peer/src/download.ts';

/** What the model takes from the code, read once. */
export function modelConstants(): ModelConstants {
  return {
    pieceWaitMs: PIECE_WAIT_MS,
    peerMaxUploads: DEFAULT_MAX_UPLOADS,
    pieceWindow: DEFAULT_PIECE_WINDOW,
    firstByteTimeoutMs: DEFAULT_FIRST_BYTE_TIMEOUT_MS,
    supernodeMaxConcurrentFetches: DEFAULT_MAX_CONCURRENT_FETCHES,
    urgentAhead: sourceConstant(DOWNLOAD_TS, 'URGENT_AHEAD'),
    idlePollMinMs: sourceConstant(DOWNLOAD_TS, 'IDLE_POLL_MIN_MS'),
    idlePollMaxMs: sourceConstant(DOWNLOAD_TS, 'IDLE_POLL_MAX_MS'),
    frontierPerCall: sourceConstant(SWARM_TS, 'FRONTIER_PER_CALL'),
    frontierAhead: sourceConstant(SWARM_TS, 'FRONTIER_AHEAD'),
    frontierTtlMs: sourceConstant(SWARM_TS, 'FRONTIER_TTL_MS'),
    claimedPieceSeedDelayMs: sourceConstant(SWARM_TS, 'CLAIMED_PIECE_SEED_DELAY_MS'),
  };
}

export interface ModelConstants {
  /** @shoal/core PIECE_WAIT_MS: the seed holds a request for a piece it lacks this long. */
  pieceWaitMs: number;
  /** @shoal/peer DEFAULT_MAX_UPLOADS: pieces a peer serves at once before 'busy'. */
  peerMaxUploads: number;
  /** @shoal/peer DEFAULT_PIECE_WINDOW: pieces a download keeps in flight. */
  pieceWindow: number;
  /** @shoal/proxy DEFAULT_FIRST_BYTE_TIMEOUT_MS: the proxy goes to the registry when the swarm sent no byte of a blob by then. */
  firstByteTimeoutMs: number;
  /** @shoal/supernode DEFAULT_MAX_CONCURRENT_FETCHES: back-to-source fetches at once. */
  supernodeMaxConcurrentFetches: number;
  /** services/peer download.ts: the next missing pieces (from the reader's cursor) a schedule call marks urgent. */
  urgentAhead: number;
  /** services/peer download.ts: idle naps from min, doubling to max; an answer that did not fill the window naps max. */
  idlePollMinMs: number;
  idlePollMaxMs: number;
  /** services/supernode swarm.ts: the frontier long-poll (pieces per answer, how far past the fill point, claim lifetime, hold-back). */
  frontierPerCall: number;
  frontierAhead: number;
  frontierTtlMs: number;
  claimedPieceSeedDelayMs: number;
}
