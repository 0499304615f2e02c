import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import { medianShortfallBytes, parseNodeLog, pieceSpread, swarmTimeline, TraceLogMissingError } from '../lib/swarm-timeline.js';

const run = promisify(execFile);
const MIB = 1024 * 1024;
const BARRIER = 1_000_000;
const DIGEST = `sha256:${'a'.repeat(64)}`;

function line(fields: Record<string, unknown>): string {
  return JSON.stringify({ level: 10, pid: 1, ...fields });
}
/** A node log: its id, the blob (3 pieces of 1 MiB: pieceLayout's size for 3 MiB), and pieces stored at `storedS` after `ms` of body. */
function nodeLog(peerId: string, stored: { piece: number; parentId: string; storedS: number; ms: number }[]): string {
  return [
    line({ time: BARRIER - 5_000, msg: 'peer listening', peerId }),
    'not json',
    line({ time: BARRIER + 100, msg: 'blob begun', digest: DIGEST, sizeBytes: 3 * MIB, pieceCount: 3 }),
    // Before the barrier (the warm-up): not counted.
    line({ time: BARRIER - 1, msg: 'piece stored', digest: DIGEST, piece: 0, parentId: 'seed', ms: 10, sinceAssignedMs: 10 }),
    ...stored.map((s) => line({ time: BARRIER + s.storedS * 1000, msg: 'piece stored', digest: DIGEST, piece: s.piece, parentId: s.parentId, ms: s.ms, sinceAssignedMs: s.ms + 50 })),
  ].join('\n');
}

test('a log that covers several pulls is read up to the end of the one asked for', (t) => {
  const text = nodeLog('peer-a', [
    { piece: 0, parentId: 'seed', storedS: 2, ms: 1000 },
    // The next pull's pieces (another blob in practice), after this pull ended at +10 s.
    { piece: 1, parentId: 'seed', storedS: 30, ms: 1000 },
  ]);
  t.is(parseNodeLog('n0', text, BARRIER).pieces.length, 2);
  const first = parseNodeLog('n0', text, BARRIER, BARRIER + 10_000);
  t.deepEqual(first.pieces.map((p) => p.piece), [0]);
});

test('the spread table groups pieces by when the supernode began them, and counts who got each by relay', (t) => {
  const a = parseNodeLog('n0', nodeLog('peer-a', [
    { piece: 0, parentId: 'seed', storedS: 2, ms: 2000 },
    { piece: 1, parentId: 'seed', storedS: 8, ms: 1000 },
  ]), BARRIER);
  const b = parseNodeLog('n1', nodeLog('peer-b', [
    // A relay: n0 stored piece 0 at 2 s, after this body began at 1 s.
    { piece: 0, parentId: 'peer-a', storedS: 2.5, ms: 1500 },
    // Not a relay: n0 had stored piece 1 at 8 s, before 8.5 s.
    { piece: 1, parentId: 'peer-a', storedS: 9, ms: 500 },
  ]), BARRIER);
  const c = parseNodeLog('n2', nodeLog('peer-c', [
    { piece: 0, parentId: 'peer-b', storedS: 4, ms: 1000 },
    { piece: 1, parentId: 'peer-b', storedS: 9.5, ms: 800 },
    // Only this node holds piece 2, and not from the supernode: left out of the table.
    { piece: 2, parentId: 'peer-b', storedS: 9.6, ms: 50 },
  ]), BARRIER);
  const spread = pieceSpread([a, b, c], 6, 10);
  t.deepEqual(spread.map((w) => [w.fromS, w.toS, w.pieces, w.relayedTo]), [[0, 6, 1, 1], [6, 10, 1, 1]]);
  t.true(Math.abs((spread[0]?.seedCopyS ?? 0) - 2) < 1e-9);
  t.true(Math.abs((spread[0]?.toAllMeanS ?? 0) - 4) < 1e-9);
  t.true(Math.abs((spread[1]?.seedCopyS ?? 0) - 1) < 1e-9);
  t.true(Math.abs((spread[1]?.toAllMedianS ?? 0) - 2.5) < 1e-9);
  // Of the 3 MiB some node stored by the end, each lacked 2 MiB at 5 s; at 9.2 s n0 and n1 lacked 1, n2 2.
  t.is(medianShortfallBytes([a, b, c], 5), 2 * MIB);
  t.is(medianShortfallBytes([a, b, c], 9.2), MIB);
  t.throws(() => pieceSpread([a], 0, 10), { instanceOf: RangeError });
});

test('each piece counts its bytes over its body, split into relays and the supernode, and against its parent\'s uplink', (t) => {
  const a = parseNodeLog('n0', nodeLog('peer-a', [{ piece: 0, parentId: 'seed', storedS: 2, ms: 2000 }]), BARRIER);
  // n1 begins piece 0 from n0 at 1 s, while n0 still receives it (a relay), and piece 1 from n0,
  // which held it before the barrier (no record in its log): not a relay.
  const b = parseNodeLog('n1', nodeLog('peer-b', [
    { piece: 0, parentId: 'peer-a', storedS: 2, ms: 1000 },
    { piece: 1, parentId: 'peer-a', storedS: 2, ms: 1000 },
  ]), BARRIER);
  t.is(a.pieces.length, 1);
  t.is(a.pieces[0]?.bytes, MIB);
  t.is(a.pieces[0]?.bodyStartS, 0);
  const bins = swarmTimeline([a, b], { binS: 1, referenceBytesPerS: MIB });
  t.is(bins.length, 2);
  // 0–1 s: n0 receives half a MiB from the seed; n1 nothing. Two nodes × 1 MiB/s of reference.
  t.is(bins[0]?.downlinkShare, 0.25);
  t.is(bins[0]?.seedShare, 0.25);
  t.is(bins[0]?.relayShare, 0);
  // 1–2 s: n0 ½ MiB from the seed, n1 1 MiB relayed and 1 MiB not.
  t.is(bins[1]?.downlinkShare, 1.25);
  t.is(bins[1]?.relayShare, 0.5);
  t.is(bins[1]?.seedShare, 0.25);
  t.is(bins[1]?.medianHeldBytes, MIB);
  t.is(bins[1]?.heldAnywhereBytes, 2 * MIB);
  t.is(bins[0]?.heldAnywhereBytes, 0);
  // n0 sent n1 2 MiB in 1–2 s (both of its pieces); n1 sent nothing. The seed is not a node.
  t.is(bins[0]?.uplinkShare, 0);
  t.is(bins[0]?.uplinksUnderHalf, 2);
  t.is(bins[1]?.uplinkShare, 1);
  t.is(bins[1]?.uplinksUnderHalf, 1);
});

test('the last piece of a blob counts its own length', (t) => {
  const text = [
    line({ time: BARRIER, msg: 'blob begun', digest: DIGEST, sizeBytes: 2 * MIB + 5, pieceCount: 3 }),
    line({ time: BARRIER + 500, msg: 'piece stored', digest: DIGEST, piece: 2, parentId: 'seed', ms: 0, sinceAssignedMs: 0 }),
  ].join('\n');
  const log = parseNodeLog('n0', text, BARRIER);
  t.is(log.pieces[0]?.bytes, 5);
  const [bin] = swarmTimeline([log], { binS: 1, referenceBytesPerS: 10 });
  t.is(bin?.downlinkShare, 0.5);
});

test('logs without trace lines say how to get them', (t) => {
  const log = parseNodeLog('n0', line({ time: BARRIER + 1, msg: 'blob served' }), BARRIER);
  const err = t.throws(() => swarmTimeline([log], { binS: 1, referenceBytesPerS: MIB }), { instanceOf: TraceLogMissingError });
  t.regex(err?.message ?? '', /SHOAL_BENCH_LOG_LEVEL=trace/);
});

test('the script refuses a file that is not a bench-swarm result, saying what it needs', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-timeline-'));
  try {
    const file = join(dir, 'bench-swarm-x.json');
    await writeFile(file, JSON.stringify({ runs: 3 }));
    const err = await t.throwsAsync(run(process.execPath, [fileURLToPath(new URL('../swarm-timeline.js', import.meta.url)), file]));
    t.regex((err as unknown as { stderr: string }).stderr, /not a bench-swarm results file .*imageBytes/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
