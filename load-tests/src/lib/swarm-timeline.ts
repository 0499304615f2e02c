/**
 * How a swarm pull used the nodes' links, second by second, from the node
 * agents' own logs (`SHOAL_BENCH_LOG_LEVEL=trace`: one `piece stored` line per
 * piece, with its parent and how long its body took).
 *
 * Why it matters: the registry's link and a node's downlink run at the same
 * rate, so a node that falls behind the registry while the registry is still
 * sending cannot catch up before the registry's last byte. Every second a
 * node's downlink is not busy becomes part of the tail after that last byte.
 * This puts a number on each second: the nodes' mean receive rate against the
 * registry's mean send rate over its window, and how much of it came from
 * peers passing on pieces they were still receiving (relays).
 *
 * A piece's body is taken to arrive at an even rate between its first byte
 * and its `piece stored` line: a bin's figure is an estimate, exact only in
 * sum over the pull.
 */
import { pieceLayout, pieceSpan } from '@shoal/core';

/** One piece a node stored during the measured pull. Seconds are from the barrier. */
export interface StoredPiece {
  readonly digest: string;
  readonly piece: number;
  readonly bytes: number;
  /** The peer id of the parent that sent it, or `seed` (the supernode). */
  readonly parentId: string;
  /** When the body's first byte (the response headers) arrived. */
  readonly bodyStartS: number;
  readonly storedS: number;
}

export interface NodeLog {
  readonly name: string;
  /** The node's peer id (`peer listening`), as parents are named in other nodes' logs. */
  readonly peerId: string | undefined;
  readonly pieces: readonly StoredPiece[];
}

export class TraceLogMissingError extends Error {
  readonly code = 'SHOAL_TRACE_LOG_MISSING';
}

interface LogLine {
  time?: unknown;
  msg?: unknown;
  digest?: unknown;
  piece?: unknown;
  parentId?: unknown;
  ms?: unknown;
  sizeBytes?: unknown;
  peerId?: unknown;
}

/**
 * A node agent's stdout (pino JSON lines): the pieces it stored after
 * `barrierUnixMs` (and, when a log covers several pulls, up to `untilUnixMs`).
 * Lines that are not JSON, or not about pieces, are skipped.
 */
export function parseNodeLog(name: string, text: string, barrierUnixMs: number, untilUnixMs = Number.POSITIVE_INFINITY): NodeLog {
  const sizes = new Map<string, number>();
  const pieces: StoredPiece[] = [];
  let peerId: string | undefined;
  for (const raw of text.split('\n')) {
    if (!raw.startsWith('{')) continue;
    let line: LogLine;
    try {
      line = JSON.parse(raw) as LogLine;
    } catch {
      continue;
    }
    if (line.msg === 'peer listening' && typeof line.peerId === 'string') peerId = line.peerId;
    if (line.msg === 'blob begun' && typeof line.digest === 'string' && typeof line.sizeBytes === 'number') sizes.set(line.digest, line.sizeBytes);
    if (line.msg !== 'piece stored' || typeof line.time !== 'number' || line.time < barrierUnixMs || line.time > untilUnixMs) continue;
    const { digest, piece, parentId, ms } = line;
    if (typeof digest !== 'string' || typeof piece !== 'number' || typeof parentId !== 'string' || typeof ms !== 'number') continue;
    const size = sizes.get(digest);
    if (size === undefined) continue;
    const storedS = (line.time - barrierUnixMs) / 1000;
    pieces.push({ digest, piece, bytes: pieceSpan(pieceLayout(size), piece).length, parentId, bodyStartS: storedS - ms / 1000, storedS });
  }
  return { name, peerId, pieces };
}

export interface TimelineBin {
  readonly fromS: number;
  readonly toS: number;
  /** The nodes' mean receive rate over the bin, as a share of the registry's mean send rate. */
  readonly downlinkShare: number;
  /** The part of downlinkShare that came from peers still receiving the piece themselves (relays). */
  readonly relayShare: number;
  /** The part that came from the supernode. */
  readonly seedShare: number;
  /** The nodes' mean send rate to other nodes over the bin, as a share of the reference rate. */
  readonly uplinkShare: number;
  /** Nodes that sent less than half the reference rate over the bin. */
  readonly uplinksUnderHalf: number;
  /** Bytes the median node held (pieces stored) at the bin's end. */
  readonly medianHeldBytes: number;
  /** Distinct bytes some node held at the bin's end. */
  readonly heldAnywhereBytes: number;
}

export interface TimelineOptions {
  /** Width of a bin. Seconds. */
  readonly binS: number;
  /** The registry's mean send rate over its window: the rate a node must keep to keep up. Bytes per second. */
  readonly referenceBytesPerS: number;
}

/** The per-bin figures over [0, the last piece stored]. */
export function swarmTimeline(nodes: readonly NodeLog[], options: TimelineOptions): TimelineBin[] {
  if (nodes.length === 0 || nodes.every((n) => n.pieces.length === 0)) {
    throw new TraceLogMissingError('no `piece stored` lines after the barrier: run bench:swarm with SHOAL_BENCH_LOG_LEVEL=trace');
  }
  if (!(options.binS > 0) || !(options.referenceBytesPerS > 0)) throw new RangeError('binS and referenceBytesPerS must be positive');
  const endS = Math.max(...nodes.flatMap((n) => n.pieces.map((p) => p.storedS)));
  const binCount = Math.ceil(endS / options.binS);
  const received = new Float64Array(binCount);
  const relayed = new Float64Array(binCount);
  const seeded = new Float64Array(binCount);
  const parents = parentsOf(nodes);
  const sent = new Map<string, Float64Array>();
  /** Per piece, when some node first held it. */
  const firstHeld = new Map<string, { s: number; bytes: number }>();
  for (const node of nodes) {
    sent.set(node.name, new Float64Array(binCount));
    for (const p of node.pieces) {
      const key = `${p.digest} ${p.piece}`;
      const seen = firstHeld.get(key);
      if (seen === undefined || p.storedS < seen.s) firstHeld.set(key, { s: p.storedS, bytes: p.bytes });
    }
  }
  for (const node of nodes) {
    for (const p of node.pieces) {
      const parent = parents.nameOf(p);
      spread(p, options.binS, received);
      if (parents.relayed(p)) spread(p, options.binS, relayed);
      if (p.parentId === 'seed') spread(p, options.binS, seeded);
      const parentSent = parent === undefined ? undefined : sent.get(parent);
      if (parentSent !== undefined) spread(p, options.binS, parentSent);
    }
  }
  const perBin = nodes.length * options.binS * options.referenceBytesPerS;
  const bins: TimelineBin[] = [];
  for (let i = 0; i < binCount; i++) {
    const toS = (i + 1) * options.binS;
    const held = nodes.map((n) => n.pieces.reduce((sum, p) => (p.storedS <= toS ? sum + p.bytes : sum), 0)).sort((a, b) => a - b);
    let anywhere = 0;
    for (const f of firstHeld.values()) if (f.s <= toS) anywhere += f.bytes;
    bins.push({
      fromS: i * options.binS,
      toS,
      downlinkShare: (received[i] ?? 0) / perBin,
      relayShare: (relayed[i] ?? 0) / perBin,
      seedShare: (seeded[i] ?? 0) / perBin,
      uplinkShare: [...sent.values()].reduce((sum, up) => sum + (up[i] ?? 0), 0) / perBin,
      uplinksUnderHalf: [...sent.values()].filter((up) => (up[i] ?? 0) < 0.5 * options.binS * options.referenceBytesPerS).length,
      medianHeldBytes: held[Math.floor((held.length - 1) / 2)] ?? 0,
      heldAnywhereBytes: anywhere,
    });
  }
  return bins;
}

/** Who sent each stored piece, and whether it came by relay. */
interface Parents {
  /** The parent node's name, or undefined for the supernode or a host whose log is not among `nodes`. */
  nameOf(p: StoredPiece): string | undefined;
  /**
   * A relay: the parent stored the piece only after this body began (it passed it on as
   * it came); a parent with no record of it stored it before the barrier.
   */
  relayed(p: StoredPiece): boolean;
}

function parentsOf(nodes: readonly NodeLog[]): Parents {
  const byPeerId = new Map<string, string>();
  const storedAt = new Map<string, number>();
  for (const node of nodes) {
    if (node.peerId !== undefined) byPeerId.set(node.peerId, node.name);
    for (const p of node.pieces) storedAt.set(`${node.name} ${p.digest} ${p.piece}`, p.storedS);
  }
  const nameOf = (p: StoredPiece): string | undefined => byPeerId.get(p.parentId);
  return {
    nameOf,
    relayed(p) {
      const parent = nameOf(p);
      return parent !== undefined && (storedAt.get(`${parent} ${p.digest} ${p.piece}`) ?? -Infinity) > p.bodyStartS;
    },
  };
}

/** Adds a piece's bytes to the bins its body spans, at an even rate (all at once if it took no time). */
function spread(p: StoredPiece, binS: number, into: Float64Array): void {
  const start = Math.max(0, p.bodyStartS);
  const duration = p.storedS - start;
  if (duration <= 0) {
    const i = Math.min(into.length - 1, Math.floor(p.storedS / binS));
    into[i] = (into[i] ?? 0) + p.bytes;
    return;
  }
  const rate = p.bytes / duration;
  for (let i = Math.floor(start / binS); i < into.length && i * binS < p.storedS; i++) {
    const overlap = Math.min((i + 1) * binS, p.storedS) - Math.max(i * binS, start);
    if (overlap > 0) into[i] = (into[i] ?? 0) + rate * overlap;
  }
}

/** How the pieces whose supernode copy began within one window spread to every node. */
export interface SpreadWindow {
  readonly fromS: number;
  readonly toS: number;
  /** Pieces every node stored whose copy from the supernode began in the window. */
  readonly pieces: number;
  /** Mean seconds the supernode's copy took (its body's first byte to stored). */
  readonly seedCopyS: number;
  /** Mean and median seconds from that first byte to the last node storing the piece. */
  readonly toAllMeanS: number;
  readonly toAllMedianS: number;
  /** Mean number of nodes per piece that got it from a peer still receiving it (a relay). */
  readonly relayedTo: number;
}

/**
 * Why: a node can only trail the registry by what the swarm has not yet
 * spread to it, so how long a fresh piece takes to reach every node sets how
 * far the nodes trail, and with it the tail after the registry's last byte.
 * Pieces are grouped by when the supernode began sending them (the earliest
 * copy from `seed`); a piece some node got only from peers is left out.
 */
export function pieceSpread(nodes: readonly NodeLog[], windowS: number, untilS: number): SpreadWindow[] {
  if (!(windowS > 0) || !(untilS > 0)) throw new RangeError('windowS and untilS must be positive');
  const parents = parentsOf(nodes);
  /** Every node's copy of each piece. */
  const copies = new Map<string, StoredPiece[]>();
  for (const node of nodes) {
    for (const p of node.pieces) {
      const key = `${p.digest} ${p.piece}`;
      const list = copies.get(key) ?? [];
      list.push(p);
      copies.set(key, list);
    }
  }
  const windows = Array.from({ length: Math.ceil(untilS / windowS) }, () => ({ seedCopy: [] as number[], toAll: [] as number[], relayed: [] as number[] }));
  for (const list of copies.values()) {
    if (list.length < nodes.length) continue;
    const fromSeed = list.filter((p) => p.parentId === 'seed').sort((x, y) => x.bodyStartS - y.bodyStartS)[0];
    if (fromSeed === undefined) continue;
    const w = windows[Math.floor(fromSeed.bodyStartS / windowS)];
    if (w === undefined || fromSeed.bodyStartS < 0) continue;
    w.seedCopy.push(fromSeed.storedS - fromSeed.bodyStartS);
    w.toAll.push(Math.max(...list.map((p) => p.storedS)) - fromSeed.bodyStartS);
    w.relayed.push(list.filter((p) => parents.relayed(p)).length);
  }
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  return windows.flatMap((w, i) => {
    if (w.toAll.length === 0) return [];
    const sorted = [...w.toAll].sort((a, b) => a - b);
    return [{ fromS: i * windowS, toS: Math.min(untilS, (i + 1) * windowS), pieces: w.toAll.length, seedCopyS: mean(w.seedCopy), toAllMeanS: mean(w.toAll), toAllMedianS: sorted[Math.floor((sorted.length - 1) / 2)] as number, relayedTo: mean(w.relayed) }];
  });
}

/**
 * What the median node lacked at `atS`: the bytes of every piece some node
 * stored by the end, less what it had stored by then. The tail after the
 * registry's last byte is about this, drained at a node's downlink rate.
 */
export function medianShortfallBytes(nodes: readonly NodeLog[], atS: number): number {
  const all = new Map<string, number>();
  for (const n of nodes) for (const p of n.pieces) all.set(`${p.digest} ${p.piece}`, p.bytes);
  let total = 0;
  for (const bytes of all.values()) total += bytes;
  const lacking = nodes.map((n) => total - n.pieces.reduce((sum, p) => (p.storedS <= atS ? sum + p.bytes : sum), 0)).sort((a, b) => a - b);
  return lacking[Math.floor((lacking.length - 1) / 2)] ?? 0;
}
