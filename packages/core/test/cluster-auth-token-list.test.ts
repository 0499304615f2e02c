/**
 * A token file may list several tokens: the first signs, every one is accepted. A process
 * started after a one-step replace (`OLD` → `NEW`) knows only NEW and is refused by the
 * processes that have not read the new file yet; listing both, in three steps, closes that.
 */
import test from 'ava';
import { ClusterAuth, isSupernodeAudience, type Clock, type TokenChange } from '../src/index.js';

const A = 'token-list-a-0123456789abcdef';
const B = 'token-list-b-fedcba9876543210';
const C = 'token-list-c-00112233445566778899';
const D = 'token-list-d-99887766554433221100';
const GRACE_MS = 60_000;
const PATH = '/api/v1/status';
const aud = { kind: 'supernode' } as const;

class FakeClock implements Clock {
  constructor(public ms = 1_800_000_000_000) {}
  now(): number {
    return this.ms;
  }
}

function node(clock: Clock, tokens: readonly string[]): ClusterAuth {
  const [token, ...acceptedTokens] = tokens;
  return new ClusterAuth({ clock }, { token, acceptedTokens, graceMs: GRACE_MS });
}

/** Whether `to` accepts a request `from` signs now. */
function accepts(to: ClusterAuth, from: ClusterAuth): boolean {
  const headers = from.sign('GET', PATH, aud);
  return to.check({ method: 'GET', url: PATH, signature: headers['x-shoal-signature'], token: undefined }, isSupernodeAudience).ok;
}

/** Whether `to` accepts `token` itself in x-shoal-token (operators' tools). */
function acceptsToken(to: ClusterAuth, token: string): boolean {
  return to.check({ method: 'GET', url: PATH, signature: undefined, token }, isSupernodeAudience).ok;
}

/** The key id `auth` signs with now. */
function signingKid(auth: ClusterAuth): string {
  return /kid=([0-9a-f]{16})/.exec(auth.sign('GET', PATH, aud)['x-shoal-signature'] ?? '')?.[1] ?? '';
}

const kidOf = (token: string): string => signingKid(node(new FakeClock(), [token]));

test('the first listed token signs, every listed one is accepted', (t) => {
  const clock = new FakeClock();
  const both = node(clock, [A, B]);
  const [onlyA, onlyB, onlyC] = [node(clock, [A]), node(clock, [B]), node(clock, [C])];
  t.is(signingKid(both), kidOf(A));
  t.true(accepts(onlyA, both));
  t.false(accepts(onlyB, both), 'the second token never signs');
  t.true(accepts(both, onlyA));
  t.true(accepts(both, onlyB));
  t.false(accepts(both, onlyC));
  t.true(acceptsToken(both, A));
  t.true(acceptsToken(both, B));
  t.false(acceptsToken(both, C));
  t.is(both.keyCount, 2);
  t.deepEqual(both.setTokens([A, B]), [], 'the same list changes nothing');

  t.throws(() => node(clock, [A, B, C, D]), { instanceOf: RangeError });
  t.throws(() => node(clock, [A, B, A]), { instanceOf: RangeError });
  t.throws(() => both.setTokens([]), { instanceOf: RangeError });
  t.throws(() => both.setTokens([C, C]), { instanceOf: RangeError });
  const open = new ClusterAuth({ clock }, { token: undefined });
  t.deepEqual(open.setTokens([A, B]), [], 'an open cluster does not start checking mid-run');
  t.true(open.open);
});

test('a new first token is accepted at once and signs after the grace; the previous one signs until then', (t) => {
  const clock = new FakeClock();
  const p = node(clock, [A]);
  const [onlyA, onlyB] = [node(clock, [A]), node(clock, [B])];
  const changes = p.setTokens([B, A]);
  t.deepEqual(changes, [{ change: 'signing', kid: kidOf(B), signFromMs: clock.ms + GRACE_MS, wasAccepted: false }] satisfies TokenChange[]);
  t.true(accepts(p, onlyB), 'the new token is accepted at once');
  t.true(accepts(onlyA, p), 'still signs with the old one: a process yet to read the file accepts it');
  clock.ms += GRACE_MS - 1;
  t.is(signingKid(p), kidOf(A));
  clock.ms += 1;
  t.is(signingKid(p), kidOf(B));
  t.true(accepts(onlyB, p));
  t.false(accepts(onlyA, p));
  clock.ms += 100 * GRACE_MS;
  t.true(accepts(p, onlyA), 'the old token stays accepted as long as it is listed');
  t.true(acceptsToken(p, A));
});

test('a listed token moved first keeps its key and signs after the grace; then dropped, it lasts two graces', (t) => {
  const clock = new FakeClock();
  const p = node(clock, [A, B]);
  const onlyA = node(clock, [A]);
  t.deepEqual(p.setTokens([B, A]), [{ change: 'signing', kid: kidOf(B), signFromMs: clock.ms + GRACE_MS, wasAccepted: true }] satisfies TokenChange[]);
  t.is(p.keyCount, 2, 'one key per token: the accepted one is reused');
  t.is(signingKid(p), kidOf(A));
  clock.ms += GRACE_MS;
  t.is(signingKid(p), kidOf(B));

  const removedAt = clock.ms;
  t.deepEqual(p.setTokens([B]), [{ change: 'removed', kid: kidOf(A), acceptUntilMs: removedAt + 2 * GRACE_MS }] satisfies TokenChange[]);
  clock.ms = removedAt + 2 * GRACE_MS - 1;
  t.true(accepts(p, onlyA));
  t.true(acceptsToken(p, A));
  clock.ms += 1;
  t.false(accepts(p, onlyA), 'refused two graces after it left the file');
  t.false(acceptsToken(p, A));
  t.is(p.keyCount, 1);
});

test('a token that leaves the list is accepted for two graces from then; listed again, it stays', (t) => {
  const clock = new FakeClock();
  const p = node(clock, [A, B]);
  const onlyB = node(clock, [B]);
  const onlyC = node(clock, [C]);
  t.deepEqual(p.setTokens([A, C]), [
    { change: 'added', kid: kidOf(C), position: 2 },
    { change: 'removed', kid: kidOf(B), acceptUntilMs: clock.ms + 2 * GRACE_MS },
  ] satisfies TokenChange[]);
  t.is(signingKid(p), kidOf(A), 'the signing token did not change');
  clock.ms += 2 * GRACE_MS - 1;
  t.true(accepts(p, onlyB));
  t.true(accepts(p, onlyC));
  clock.ms += 1;
  t.false(accepts(p, onlyB));

  t.deepEqual(p.setTokens([A]), [{ change: 'removed', kid: kidOf(C), acceptUntilMs: clock.ms + 2 * GRACE_MS }] satisfies TokenChange[]);
  clock.ms += GRACE_MS;
  t.deepEqual(p.setTokens([A, C]), [{ change: 'added', kid: kidOf(C), position: 2 }] satisfies TokenChange[]);
  clock.ms += 100 * GRACE_MS;
  t.true(accepts(p, onlyC), 'listed again before its end: accepted as long as it is listed');
});

test('the first token changed again within the grace: the one signing goes on, the skipped one never signs', (t) => {
  const clock = new FakeClock();
  const p = node(clock, [A]);
  const start = clock.ms;
  p.setTokens([B]);
  clock.ms += GRACE_MS / 2;
  t.deepEqual(p.setTokens([C]), [
    { change: 'signing', kid: kidOf(C), signFromMs: clock.ms + GRACE_MS, wasAccepted: false },
    { change: 'removed', kid: kidOf(B), acceptUntilMs: clock.ms + 2 * GRACE_MS },
  ] satisfies TokenChange[]);
  clock.ms = start + GRACE_MS; // B's turn would have come
  t.is(signingKid(p), kidOf(A));
  clock.ms = start + 1.5 * GRACE_MS;
  t.is(signingKid(p), kidOf(C));

  // Put back first before its successor signed: it simply keeps signing.
  const q = node(clock, [A]);
  q.setTokens([B]);
  clock.ms += GRACE_MS / 2;
  t.deepEqual(q.setTokens([A]), [
    { change: 'signing', kid: kidOf(A), signFromMs: clock.ms, wasAccepted: true },
    { change: 'removed', kid: kidOf(B), acceptUntilMs: clock.ms + 2 * GRACE_MS },
  ] satisfies TokenChange[]);
  for (let i = 0; i < 4; i++, clock.ms += GRACE_MS) t.is(signingKid(q), kidOf(A));
});

test('the key signing is kept while it signs, even past two graces from when it left the file', (t) => {
  const clock = new FakeClock();
  const start = clock.ms;
  const p = node(clock, [A]);
  const onlyA = node(clock, [A]);
  p.setTokens([B]); // A accepted until start + 2 graces, B would sign at start + 1
  clock.ms = start + 0.9 * GRACE_MS;
  p.setTokens([C]); // C would sign at start + 1.9
  clock.ms = start + 1.8 * GRACE_MS;
  p.setTokens([D]); // D signs at start + 2.8
  clock.ms = start + 2.5 * GRACE_MS;
  t.is(signingKid(p), kidOf(A), 'nobody else has had its turn');
  t.true(accepts(p, onlyA), 'what it signs with, it accepts');
  clock.ms = start + 2.8 * GRACE_MS;
  t.is(signingKid(p), kidOf(D));
  t.false(accepts(p, onlyA));
});

test('keys stay bounded: three listed and as many again in their grace; the signing one is never dropped', (t) => {
  const clock = new FakeClock();
  const tokens = (round: number): string[] => [1, 2, 3].map((i) => `token-list-round-${round}-${i}-0123456789`);
  const first = tokens(0);
  const p = node(clock, first);
  const signer = node(clock, [first[0] ?? '']);
  for (let round = 1; round <= 10; round++) {
    clock.ms += 1_000; // far faster than the grace: every replaced list is still within it
    p.setTokens(tokens(round));
    t.true(p.keyCount <= 6, `round ${round}: ${p.keyCount} keys`);
    for (const token of tokens(round)) t.true(acceptsToken(p, token), `round ${round}: a listed token is accepted`);
    t.is(signingKid(p), kidOf(first[0] ?? ''), 'the first list\'s first token still signs (no successor has had its grace)');
    t.true(accepts(p, signer));
  }
  t.is(p.keyCount, 6);
  t.false(acceptsToken(p, first[1] ?? ''), 'an unlisted key whose end came first was dropped');
  t.is(tokens(9).filter((token) => acceptsToken(p, token)).length, 2, 'the room left (6 − 3 listed − the signing one) holds the list replaced last');
  clock.ms += GRACE_MS;
  t.is(signingKid(p), kidOf(tokens(10)[0] ?? ''));
});

interface Refusal {
  atMs: number;
  to: string;
  /** Another process, or `cli` for the token itself (an operator's tool sends the file's first). */
  from: string;
}

/**
 * A fleet of processes that read each version of the file on their own time (0 or `lagMs`
 * after it was written; two run from the start with `initial`), and a new process started
 * every 10 s with the file as written then. Every refusal, every 2 s.
 */
function simulate(steps: ReadonlyArray<{ atMs: number; tokens: string[] }>, initial: string[], lagMs: number, endMs: number): Refusal[] {
  const clock = new FakeClock();
  const t0 = clock.ms;
  const written = (at: number): string[] => [...steps].reverse().find((s) => s.atMs <= at)?.tokens ?? initial;
  const fleet: Array<{ name: string; auth: ClusterAuth; lagMs: number; startMs: number; seen: string }> = [];
  const start = (name: string, at: number, lag: number, tokens: string[]): void => {
    fleet.push({ name, auth: node(clock, tokens), lagMs: lag, startMs: at, seen: tokens.join('\n') });
  };
  const refusals: Refusal[] = [];
  start('early', -1, 0, initial);
  start('late', -1, lagMs, initial);
  for (let at = 0; at <= endMs; at += 2_000) {
    clock.ms = t0 + at;
    if (at > 0 && at % 10_000 === 0) start(`started@${at / 1000}s`, at, (at / 10_000) % 2 === 0 ? 0 : lagMs, written(at));
    for (const p of fleet) {
      // What this process has read by now: the last version written lagMs ago (after it started).
      const version = steps.filter((s) => s.atMs > p.startMs && s.atMs + p.lagMs <= at).pop();
      if (version !== undefined && version.tokens.join('\n') !== p.seen) {
        p.auth.setTokens(version.tokens);
        p.seen = version.tokens.join('\n');
      }
    }
    const cli = written(at)[0] ?? '';
    for (const to of fleet) {
      if (!acceptsToken(to.auth, cli)) refusals.push({ atMs: at, to: to.name, from: 'cli' });
      for (const from of fleet) if (from !== to && !accepts(to.auth, from.auth)) refusals.push({ atMs: at, to: to.name, from: from.name });
    }
  }
  return refusals;
}

test('three-step rotation: a process started at any point signs with a token every other accepts, and accepts theirs', (t) => {
  const lagMs = 50_000; // kubelet's sync, within the grace
  const step2 = lagMs + 4_000; // every process has read step 1
  const step3 = step2 + lagMs + GRACE_MS + 4_000; // every process has read step 2 and signs with its first token
  const steps = [
    { atMs: 0, tokens: [A, B] },
    { atMs: step2, tokens: [B, A] },
    { atMs: step3, tokens: [B] },
  ];
  t.deepEqual(simulate(steps, [A], lagMs, step3 + lagMs + 2 * GRACE_MS + 10_000), []);
});

test('one-step replace: running processes keep talking; one started after it is refused for a while', (t) => {
  const lagMs = 50_000;
  const refusals = simulate([{ atMs: 0, tokens: [B] }], [A], lagMs, lagMs + 2 * GRACE_MS + 10_000);
  const running = new Set(['early', 'late']);
  t.deepEqual(refusals.filter((r) => running.has(r.to) && running.has(r.from)), []);
  t.true(refusals.some((r) => r.from.startsWith('started@')), 'the late one refuses a new process');
  t.true(refusals.some((r) => r.to.startsWith('started@')), 'a new process refuses what the others sign through their grace');
});
