import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { tokenMatches } from './auth.js';
import { NonceCache } from './nonce-cache.js';
import { systemClock, type Clock } from './timing.js';

/**
 * Cluster authentication without sending the secret: a request between Shoal
 * processes carries an HMAC-SHA256 signature under a key derived from the
 * cluster token, over its method, raw path and query, a timestamp, a nonce and
 * its audience (who it is for). The receiver checks the signature, the time,
 * that it is the audience, and that the nonce is new. Someone who receives such
 * a request (a rogue parent) learns nothing it can reuse: not the token, not
 * the key, and not a request any real peer or supernode accepts (the audience
 * is the rogue itself, and the nonce is spent).
 *
 * Header (HEADER.signature): `v1;kid=<16 hex>;ts=<ms>;nonce=<22 b64url>;aud=<audience>;sig=<43 b64url>`.
 * Signed text: `shoal-sig-v1\n<METHOD>\n<path?query as sent>\n<ts>\n<nonce>\n<audience>`.
 * Audiences: `supernode` (any supernode of the cluster), or `peer/<host>:<port>`
 * (the one peer reached at that address, as the sender dialled it).
 *
 * Rotation: `rotate(newToken)` accepts the new key at once, keeps signing with
 * the old one for `graceMs` (so peers that have not read the new file yet still
 * accept what this one sends), then signs with the new one and accepts the old
 * one for another `graceMs`. A rotation never splits the cluster as long as
 * every process reads the new token within `graceMs` of the others.
 *
 * No I/O here (the token file is read and watched by the services).
 */

/** How far a signature's timestamp may be from the receiver's clock, either way. Milliseconds: 30 s. */
export const SIGNATURE_MAX_SKEW_MS = 30_000;
/**
 * Nonces remembered per receiver (bound of the replay cache): about 100 bytes
 * each, so 10 MiB. A receiver serving more than this many signed requests
 * within SIGNATURE_MAX_SKEW_MS × 2 refuses the oldest-stamped ones (see NonceCache).
 */
export const MAX_REMEMBERED_NONCES = 100_000;
/** How long both the old and the new token work after a rotation is seen, per phase. Milliseconds: 5 min. */
export const DEFAULT_TOKEN_GRACE_MS = 300_000;
/** Keys kept at once (the current one and those still within their grace). */
const MAX_KEYS = 4;
/** Characters a cluster token must have at least. */
export const MIN_TOKEN_LENGTH = 16;

export type Audience = { kind: 'supernode' } | { kind: 'peer'; host: string };

/** `host:port` of a URL with the port always written (the form audiences and their checks use). */
export function audienceHost(url: URL): string {
  const port = url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80';
  return `${url.hostname.toLowerCase()}:${port}`;
}

export function audienceText(audience: Audience): string {
  return audience.kind === 'supernode' ? 'supernode' : `peer/${audience.host}`;
}

/** Why a request was not accepted (logged; the client gets a bare 401). */
export type AuthFailure = 'missing' | 'malformed' | 'unknown-key' | 'expired' | 'future' | 'wrong-audience' | 'bad-signature' | 'replayed' | 'wrong-token';

export type AuthResult = { ok: true; via: 'open' | 'token' | 'signature' } | { ok: false; reason: AuthFailure };

interface Key {
  readonly token: string;
  readonly key: Buffer;
  readonly kid: string;
  /** This key signs from then on (until a newer key's signFromMs). */
  readonly signFromMs: number;
  /** Accepted until then (Infinity while current). */
  acceptUntilMs: number;
}

function deriveKey(token: string, signFromMs: number): Key {
  const key = createHmac('sha256', token).update('shoal request signing key v1').digest();
  const kid = createHash('sha256').update('shoal key id v1\n').update(key).digest('hex').slice(0, 16);
  return { token, key, kid, signFromMs, acceptUntilMs: Infinity };
}

const HEADER_RE = /^v1;kid=([0-9a-f]{16});ts=(\d{1,15});nonce=([A-Za-z0-9_-]{22});aud=([A-Za-z0-9._:[\]/-]{1,300});sig=([A-Za-z0-9_-]{43})$/;

/** Checks a token file's text; the trimmed token, or the problem with it. */
export function parseTokenText(text: string): { token: string } | { problem: string } {
  const token = text.trim();
  if (token.length < MIN_TOKEN_LENGTH) return { problem: `holds ${token.length} characters; use at least ${MIN_TOKEN_LENGTH} (e.g. openssl rand -hex 32)` };
  return { token };
}

export interface ClusterAuthInit {
  /** The cluster token; undefined runs the cluster open (no checks, nothing signed). */
  token: string | undefined;
  /** @default DEFAULT_TOKEN_GRACE_MS */
  graceMs?: number | undefined;
  /** @default MAX_REMEMBERED_NONCES */
  maxNonces?: number | undefined;
}

export class ClusterAuth {
  private readonly clock: Clock;
  private readonly graceMs: number;
  private readonly nonces: NonceCache;
  /** Newest first. */
  private keys: Key[];

  constructor(components: { clock?: Clock } = {}, init: ClusterAuthInit) {
    this.clock = components.clock ?? systemClock;
    this.graceMs = init.graceMs ?? DEFAULT_TOKEN_GRACE_MS;
    if (!Number.isFinite(this.graceMs) || this.graceMs < 0) throw new RangeError(`token grace ${this.graceMs} ms must be ≥ 0`);
    this.nonces = new NonceCache(init.maxNonces ?? MAX_REMEMBERED_NONCES);
    this.keys = init.token === undefined ? [] : [deriveKey(init.token, -Infinity)];
  }

  /** No token: every request is accepted and nothing is signed. */
  get open(): boolean {
    return this.keys.length === 0;
  }

  /** Nonces remembered now (a metric). */
  get rememberedNonces(): number {
    return this.nonces.size;
  }

  /**
   * A new token (the token file changed). False when it is the current one or
   * the cluster runs open (an open cluster does not start checking mid-run).
   */
  rotate(token: string): boolean {
    const newest = this.keys[0];
    if (newest === undefined || newest.token === token) return false;
    const now = this.clock.now();
    this.prune(now);
    const next = deriveKey(token, now + this.graceMs);
    // Every older key is accepted until the new one has signed for a whole grace.
    for (const k of this.keys) k.acceptUntilMs = Math.min(k.acceptUntilMs, now + 2 * this.graceMs);
    this.keys = [next, ...this.keys].slice(0, MAX_KEYS);
    return true;
  }

  private prune(now: number): void {
    this.keys = this.keys.filter((k, i) => i === 0 || k.acceptUntilMs > now);
  }

  private signingKey(now: number): Key | undefined {
    return this.keys.find((k) => k.signFromMs <= now && k.acceptUntilMs > now) ?? this.keys[this.keys.length - 1];
  }

  /** Headers that authenticate one request; `{}` when the cluster runs open. `pathWithQuery` exactly as it goes on the wire. */
  sign(method: string, pathWithQuery: string, audience: Audience): Record<string, string> {
    const now = this.clock.now();
    const key = this.signingKey(now);
    if (key === undefined) return {};
    const nonce = randomBytes(16).toString('base64url');
    const aud = audienceText(audience);
    const sig = createHmac('sha256', key.key).update(`shoal-sig-v1\n${method.toUpperCase()}\n${pathWithQuery}\n${now}\n${nonce}\n${aud}`).digest('base64url');
    return { 'x-shoal-signature': `v1;kid=${key.kid};ts=${now};nonce=${nonce};aud=${aud};sig=${sig}` };
  }

  /**
   * Checks a request: a valid signature for an audience `isMe` accepts, or
   * (for operators' calls) the token itself in `x-shoal-token`. A signature's
   * nonce is spent by a successful check.
   */
  check(request: { method: string; url: string; signature: string | undefined; token: string | undefined }, isMe: (audience: string) => boolean): AuthResult {
    if (this.keys.length === 0) return { ok: true, via: 'open' };
    const now = this.clock.now();
    this.prune(now);
    if (request.signature !== undefined) return this.checkSignature(request.method, request.url, request.signature, isMe, now);
    if (request.token !== undefined) {
      let match = false;
      // Every key is compared, so timing does not tell which one matched.
      for (const k of this.keys) if (tokenMatches(k.token, request.token)) match = true;
      return match ? { ok: true, via: 'token' } : { ok: false, reason: 'wrong-token' };
    }
    return { ok: false, reason: 'missing' };
  }

  private checkSignature(method: string, url: string, header: string, isMe: (audience: string) => boolean, now: number): AuthResult {
    const m = HEADER_RE.exec(header);
    if (m === null) return { ok: false, reason: 'malformed' };
    const [, kid, tsText, nonce, aud, sig] = m as unknown as [string, string, string, string, string, string];
    const key = this.keys.find((k) => k.kid === kid);
    if (key === undefined) return { ok: false, reason: 'unknown-key' };
    const ts = Number(tsText);
    if (ts < now - SIGNATURE_MAX_SKEW_MS) return { ok: false, reason: 'expired' };
    if (ts > now + SIGNATURE_MAX_SKEW_MS) return { ok: false, reason: 'future' };
    if (!isMe(aud)) return { ok: false, reason: 'wrong-audience' };
    const expected = createHmac('sha256', key.key).update(`shoal-sig-v1\n${method.toUpperCase()}\n${url}\n${ts}\n${nonce}\n${aud}`).digest();
    const presented = Buffer.from(sig, 'base64url');
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return { ok: false, reason: 'bad-signature' };
    if (!this.nonces.use(nonce, ts, now - SIGNATURE_MAX_SKEW_MS)) return { ok: false, reason: 'replayed' };
    return { ok: true, via: 'signature' };
  }
}

/** The audience check of a supernode: requests signed for any supernode of the cluster. */
export const isSupernodeAudience = (audience: string): boolean => audience === 'supernode';

/** The audience check of a peer reached at any of `hosts` (`host:port`, as audienceHost writes them). */
export function peerAudienceCheck(hosts: Iterable<string>): (audience: string) => boolean {
  const accepted = new Set([...hosts].map((h) => `peer/${h.toLowerCase()}`));
  return (audience) => accepted.has(audience);
}
