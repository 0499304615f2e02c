/**
 * Regression: peers sent the cluster token itself (`x-shoal-token`) to every parent the
 * scheduler named, so a rogue parent received the secret. Requests are now signed:
 * what a receiver sees cannot be turned into the token, replayed, or used elsewhere.
 */
import test from 'ava';
import { ClusterAuth, NonceCache, peerAudienceCheck, isSupernodeAudience, type Clock } from '../src/index.js';

const TOKEN = 'cluster-auth-token-0123456789abcdef';
const NEW_TOKEN = 'cluster-auth-token-rotated-fedcba9876';

class FakeClock implements Clock {
  constructor(public ms = 1_800_000_000_000) {}
  now(): number {
    return this.ms;
  }
}

const PATH = '/api/v1/blobs/sha256:' + 'a'.repeat(64) + '/pieces/3';
const me = peerAudienceCheck(['10.0.0.5:65002']);

function req(headers: Record<string, string>, url = PATH, method = 'GET') {
  return { method, url, signature: headers['x-shoal-signature'], token: headers['x-shoal-token'] };
}

test('a signed request is accepted once, by its audience only, and carries no token', (t) => {
  const clock = new FakeClock();
  const sender = new ClusterAuth({ clock }, { token: TOKEN });
  const receiver = new ClusterAuth({ clock }, { token: TOKEN });
  const headers = sender.sign('GET', PATH, { kind: 'peer', host: '10.0.0.5:65002' });
  t.is(headers['x-shoal-token'], undefined);
  t.false(JSON.stringify(headers).includes(TOKEN));
  t.deepEqual(receiver.check(req(headers), me), { ok: true, via: 'signature' });
  t.deepEqual(receiver.check(req(headers), me), { ok: false, reason: 'replayed' });

  const forRogue = sender.sign('GET', PATH, { kind: 'peer', host: '10.0.0.66:65002' });
  t.deepEqual(receiver.check(req(forRogue), me), { ok: false, reason: 'wrong-audience' });
  t.deepEqual(receiver.check(req(forRogue), isSupernodeAudience), { ok: false, reason: 'wrong-audience' });
  const forSupernode = sender.sign('GET', PATH, { kind: 'supernode' });
  t.deepEqual(receiver.check(req(forSupernode), me), { ok: false, reason: 'wrong-audience' });
  t.true(receiver.check(req(forSupernode), isSupernodeAudience).ok);
});

test('the signature covers method, path and query; time is bounded; other keys fail', (t) => {
  const clock = new FakeClock();
  const sender = new ClusterAuth({ clock }, { token: TOKEN });
  const receiver = new ClusterAuth({ clock }, { token: TOKEN });
  const sign = (): Record<string, string> => sender.sign('GET', `${PATH}?size=10`, { kind: 'peer', host: '10.0.0.5:65002' });
  t.deepEqual(receiver.check(req(sign(), `${PATH}?size=11`), me), { ok: false, reason: 'bad-signature' });
  t.deepEqual(receiver.check(req(sign(), `${PATH}?size=10`, 'POST'), me), { ok: false, reason: 'bad-signature' });
  t.deepEqual(receiver.check(req(sign(), PATH.replace('pieces/3', 'pieces/4') + '?size=10'), me), { ok: false, reason: 'bad-signature' });
  const old = sign();
  clock.ms += 30_001;
  t.deepEqual(receiver.check(req(old, `${PATH}?size=10`), me), { ok: false, reason: 'expired' });
  const early = sign();
  clock.ms -= 30_001;
  t.deepEqual(receiver.check(req(early, `${PATH}?size=10`), me), { ok: false, reason: 'future' });
  const stranger = new ClusterAuth({ clock }, { token: 'another-cluster-token-000000000000' });
  t.deepEqual(receiver.check(req(stranger.sign('GET', PATH, { kind: 'peer', host: '10.0.0.5:65002' })), me), { ok: false, reason: 'unknown-key' });
  t.deepEqual(receiver.check(req({}), me), { ok: false, reason: 'missing' });
  t.deepEqual(receiver.check(req({ 'x-shoal-signature': 'v1;kid=zz' }), me), { ok: false, reason: 'malformed' });
  // Operators' tools send the token itself; that still works.
  t.deepEqual(receiver.check(req({ 'x-shoal-token': TOKEN }), isSupernodeAudience), { ok: true, via: 'token' });
  t.deepEqual(receiver.check(req({ 'x-shoal-token': 'nope' }), isSupernodeAudience), { ok: false, reason: 'wrong-token' });
  const open = new ClusterAuth({ clock }, { token: undefined });
  t.deepEqual(open.sign('GET', PATH, { kind: 'supernode' }), {});
  t.deepEqual(open.check(req({}), me), { ok: true, via: 'open' });
});

test('rotation: the new key is accepted at once, signs after the grace, and the old one is refused after two', (t) => {
  const clock = new FakeClock();
  const graceMs = 60_000;
  const early = new ClusterAuth({ clock }, { token: TOKEN, graceMs }); // reads the new file first
  const late = new ClusterAuth({ clock }, { token: TOKEN, graceMs }); // reads it 50 s later
  const fresh = new ClusterAuth({ clock }, { token: NEW_TOKEN, graceMs }); // a process started after the rotation
  const aud = { kind: 'supernode' } as const;
  const roundTrip = (from: ClusterAuth, to: ClusterAuth): boolean => to.check(req(from.sign('GET', PATH, aud)), isSupernodeAudience).ok;

  t.true(early.rotate(NEW_TOKEN));
  t.false(early.rotate(NEW_TOKEN), 'the same token again is no rotation');
  t.true(roundTrip(early, late), 'still signs with the old key: the late one accepts');
  t.true(roundTrip(fresh, early), 'accepts the new key at once');
  clock.ms += 50_000;
  t.true(late.rotate(NEW_TOKEN));
  clock.ms += 10_001; // the early one now signs with the new key
  t.true(roundTrip(early, late));
  t.true(roundTrip(late, early), 'the late one still signs with the old key: accepted');
  t.true(early.check(req({ 'x-shoal-token': TOKEN }), isSupernodeAudience).ok, 'the old token still works within the grace');
  clock.ms += 60_000; // two graces after the early one's rotation
  t.true(roundTrip(late, early), 'the late one signs with the new key by now');
  t.true(roundTrip(fresh, late));
  const oldOnly = new ClusterAuth({ clock }, { token: TOKEN });
  t.false(roundTrip(oldOnly, early), 'the old key is refused after two graces');
  t.false(early.check(req({ 'x-shoal-token': TOKEN }), isSupernodeAudience).ok, 'and so is the old token');
  t.true(early.check(req({ 'x-shoal-token': NEW_TOKEN }), isSupernodeAudience).ok);
});

test('a full nonce cache still catches every replay: what it forgot is refused by time', (t) => {
  const cache = new NonceCache(3);
  t.true(cache.use('a', 100, 0));
  t.true(cache.use('b', 101, 0));
  t.true(cache.use('c', 102, 0));
  t.true(cache.use('d', 103, 0)); // forgets a
  t.is(cache.size, 3);
  t.is(cache.floorMs, 100);
  t.false(cache.use('a', 100, 0), 'a replay of the forgotten one is refused by its time');
  t.false(cache.use('b', 101, 0), 'a replay of one remembered is refused by its nonce');
  t.true(cache.use('e', 104, 0));
  t.true(cache.use('f', 105, 103), 'entries older than the window go first');
  t.is(cache.size, 3);
});
