import test from 'ava';
import fc from 'fast-check';
import { Scheduler, type FailureKind } from '../src/scheduler/index.js';

/**
 * Random sequences of every call against a small swarm, checked after each
 * step against a plain model: every assignment is for a piece the child lacks,
 * is not already fetching and somebody holds; every candidate holds the piece
 * (or, in a chain, has been assigned it: requests ahead), is live, is not the
 * child, appears once, the seed last; and the scheduler's
 * count of in-flight assignments is exactly the model's (announce, failure
 * report, removal and TTL all end them).
 */

const PEERS = 5;
const BLOBS = [`sha256:${'a'.repeat(64)}`, `sha256:${'b'.repeat(64)}`];
const PIECES = 6;
const TTL_MS = 1_000;
const CANDIDATES = 3;

type Op =
  | { op: 'add'; peer: number; zone: number }
  | { op: 'remove'; peer: number }
  | { op: 'seedHas'; blob: number; pieces: number[] }
  | { op: 'peerHas'; peer: number; blob: number; pieces: number[] }
  | { op: 'drop'; peer: number; blob: number }
  | { op: 'fail'; peer: number; parent: number; blob: number; piece: number; kind: FailureKind }
  | { op: 'schedule'; peer: number; blob: number; limit: number; urgent: number[] }
  | { op: 'advance'; ms: number };

const peer = fc.nat({ max: PEERS - 1 });
const blob = fc.nat({ max: BLOBS.length - 1 });
const piece = fc.integer({ min: -1, max: PIECES });
const pieces = fc.array(piece, { maxLength: 4 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('add' as const), peer, zone: fc.nat({ max: 2 }) }),
  fc.record({ op: fc.constant('remove' as const), peer }),
  fc.record({ op: fc.constant('seedHas' as const), blob, pieces }),
  fc.record({ op: fc.constant('peerHas' as const), peer, blob, pieces }),
  fc.record({ op: fc.constant('drop' as const), peer, blob }),
  fc.record({
    op: fc.constant('fail' as const),
    peer,
    parent: fc.integer({ min: -1, max: PEERS - 1 }),
    blob,
    piece,
    kind: fc.constantFrom<FailureKind>('bad-piece', 'stalled', 'unreachable', 'missing', 'busy'),
  }),
  fc.record({ op: fc.constant('schedule' as const), peer, blob, limit: fc.nat({ max: 5 }), urgent: pieces }),
  fc.record({ op: fc.constant('schedule' as const), peer, blob, limit: fc.nat({ max: 5 }), urgent: pieces }),
  fc.record({ op: fc.constant('advance' as const), ms: fc.nat({ max: 600 }) }),
);

const id = (i: number): string => `p${i}`;
const key = (p: number, b: number, piece: number): string => `${p}/${b}/${piece}`;

test('any sequence of calls keeps the scheduler consistent with the model', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 80, size: 'max' }), fc.nat(), fc.constantFrom(0, 3), (ops, seed, chainMembers) => {
        let now = 0;
        let r = seed;
        const random = (): number => ((r = (Math.imul(r, 1103515245) + 12345) >>> 0), r / 4294967296);
        const s = new Scheduler(
          { clock: { now: () => now }, random },
          { candidatesPerPiece: CANDIDATES, maxUploadsPerPeer: 2, maxSeedUploads: 3, assignmentTtlMs: TTL_MS, failurePenaltyMs: 500, quarantineMs: 800, chainMembers },
        );
        for (let b = 0; b < BLOBS.length; b++) s.addBlob(BLOBS[b] as string, PIECES);
        const live = new Set<number>();
        const zones = new Map<number, string | undefined>(); // live peer → the zone it was added with
        const have = new Map<string, Set<number>>(); // `${peer}/${blob}` → pieces
        const seedHave = BLOBS.map(() => new Set<number>());
        const pending = new Map<string, number>(); // key → expiresAt
        const holds = (p: number, b: number, x: number): boolean => have.get(`${p}/${b}`)?.has(x) === true;
        const valid = (x: number): boolean => x >= 0 && x < PIECES;

        for (const o of ops) {
          switch (o.op) {
            case 'add': {
              // Added again with the same address and zone, a peer keeps its state; a changed zone is a new incarnation.
              const zone = live.has(o.peer) ? undefined : `z${o.zone}`;
              s.addPeer({ peerId: id(o.peer), url: `http://${id(o.peer)}`, zone });
              if (live.has(o.peer) && zones.get(o.peer) !== zone) {
                for (const b of BLOBS.keys()) have.delete(`${o.peer}/${b}`);
                for (const k of [...pending.keys()]) if (k.startsWith(`${o.peer}/`)) pending.delete(k);
              }
              live.add(o.peer);
              zones.set(o.peer, zone);
              break;
            }
            case 'remove':
              s.removePeer(id(o.peer));
              live.delete(o.peer);
              zones.delete(o.peer);
              for (const b of BLOBS.keys()) have.delete(`${o.peer}/${b}`);
              for (const k of [...pending.keys()]) if (k.startsWith(`${o.peer}/`)) pending.delete(k);
              break;
            case 'seedHas':
              s.seedHas(BLOBS[o.blob] as string, o.pieces);
              for (const x of o.pieces) if (valid(x)) seedHave[o.blob]?.add(x);
              break;
            case 'peerHas': {
              s.peerHas(id(o.peer), BLOBS[o.blob] as string, o.pieces);
              if (!live.has(o.peer)) break;
              const set = have.get(`${o.peer}/${o.blob}`) ?? new Set<number>();
              have.set(`${o.peer}/${o.blob}`, set);
              for (const x of o.pieces) {
                if (!valid(x)) continue;
                set.add(x);
                pending.delete(key(o.peer, o.blob, x));
              }
              break;
            }
            case 'drop':
              s.peerDropped(id(o.peer), BLOBS[o.blob] as string);
              have.delete(`${o.peer}/${o.blob}`);
              for (const k of [...pending.keys()]) if (k.startsWith(`${o.peer}/${o.blob}/`)) pending.delete(k);
              break;
            case 'fail':
              s.reportFailure(id(o.peer), o.parent < 0 ? 'seed' : id(o.parent), BLOBS[o.blob] as string, o.piece, o.kind);
              if (live.has(o.peer)) pending.delete(key(o.peer, o.blob, o.piece));
              break;
            case 'advance':
              now += o.ms;
              break;
            case 'schedule': {
              for (const [k, exp] of pending) if (exp <= now) pending.delete(k);
              const got = s.schedule(id(o.peer), BLOBS[o.blob] as string, { limit: o.limit, urgent: o.urgent });
              if (!live.has(o.peer) && got.length > 0) return false;
              if (got.length > o.limit) return false;
              const seen = new Set<number>();
              for (const a of got) {
                if (!valid(a.piece) || seen.has(a.piece)) return false;
                seen.add(a.piece);
                if (holds(o.peer, o.blob, a.piece) || pending.has(key(o.peer, o.blob, a.piece))) return false;
                const ids = a.candidates.map((c) => (c.kind === 'seed' ? 'seed' : c.peerId));
                if (ids.length === 0 || ids.length > CANDIDATES || new Set(ids).size !== ids.length) return false;
                for (const [i, c] of a.candidates.entries()) {
                  if (c.kind === 'seed') {
                    if (!seedHave[o.blob]?.has(a.piece) || i !== ids.length - 1) return false;
                  } else {
                    const p = Number(c.peerId.slice(1));
                    const coming = holds(p, o.blob, a.piece) || (chainMembers > 0 && pending.has(key(p, o.blob, a.piece)));
                    if (p === o.peer || !live.has(p) || !coming || c.url !== `http://${c.peerId}`) return false;
                  }
                }
                pending.set(key(o.peer, o.blob, a.piece), now + TTL_MS);
              }
              break;
            }
          }
          for (const [k, exp] of pending) if (exp <= now) pending.delete(k);
          const stats = s.stats();
          if (stats.inflightAssignments !== pending.size || stats.peers !== live.size || stats.seedInflight < 0) return false;
        }
        now += TTL_MS;
        return s.stats().inflightAssignments === 0 && s.stats().seedInflight === 0;
      }),
      { seed: 20_241_122, numRuns: 2_000 },
    ),
  );
});
