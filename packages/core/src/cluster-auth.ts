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
 * Several tokens: a token file may list up to MAX_LISTED_TOKENS, one a line.
 * The first signs; every listed one is accepted, for as long as it is listed.
 * `setTokens(list)` takes the file's list on every change:
 * - a new first token is accepted at once, but the previous signing token keeps
 *   signing for `graceMs` (so peers that have not read the new file yet still
 *   accept what this one sends), then the new one signs;
 * - a token that leaves the list is accepted for another 2 × `graceMs` from then
 *   (the same as a token rotated out of a one-line file), then refused.
 * A one-step replace (`OLD` → `NEW`) never splits running processes as long as
 * each reads the new file within `graceMs` of the others, but a process started
 * after it knows only NEW, which those that have not read the file yet refuse.
 * Three steps close that, each written once every process has read the one
 * before: `OLD\nNEW` (everyone accepts NEW), then `NEW\nOLD` (NEW signs after
 * the grace, OLD still accepted), then, a grace later, `NEW`. A process started
 * at any point signs with a token every other process accepts.
 *
 * No I/O here (the token file is read and watched by the services; its text is
 * parsed by parseTokenText).
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
/** Characters a cluster token must have at least. */
export const MIN_TOKEN_LENGTH = 16;
/** Tokens a token file may list at once (the first signs, every one is accepted). */
export const MAX_LISTED_TOKENS = 3;
/**
 * Keys kept at once: the MAX_LISTED_TOKENS listed ones, and as many again that
 * left the list and are within their 2 × grace (what replacing a whole list at
 * once leaves). A list changed faster than that drops the unlisted keys whose
 * acceptance ends first, never a listed one nor the one signing.
 */
const MAX_KEYS = 2 * MAX_LISTED_TOKENS;

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
  /** This key signs from then on, until a key with a later signFromMs takes over (Infinity: it only is accepted). */
  signFromMs: number;
  /** Accepted until then (Infinity while listed). The key signing is accepted while it signs, whatever this says. */
  acceptUntilMs: number;
}

function deriveKey(token: string, signFromMs: number): Key {
  const key = createHmac('sha256', token).update('shoal request signing key v1').digest();
  const kid = createHash('sha256').update('shoal key id v1\n').update(key).digest('hex').slice(0, 16);
  return { token, key, kid, signFromMs, acceptUntilMs: Infinity };
}

/**
 * What a new token list changed, one entry per change (for the log: the key id,
 * never the token). `kid` is the id signatures carry.
 */
export type TokenChange =
  /** The first token is another one: it signs from `signFromMs` (after the grace), the previous one until then. */
  | { change: 'signing'; kid: string; signFromMs: number; wasAccepted: boolean }
  /** A token listed after the first that was not listed before: accepted from now on, never signing. */
  | { change: 'added'; kid: string; position: number }
  /** A token no longer listed: accepted until `acceptUntilMs` (2 × grace from now). */
  | { change: 'removed'; kid: string; acceptUntilMs: number };

function checkTokenList(tokens: readonly string[]): void {
  if (tokens.length === 0 || tokens.length > MAX_LISTED_TOKENS) throw new RangeError(`${tokens.length} tokens: list 1 to ${MAX_LISTED_TOKENS}`);
  if (new Set(tokens).size !== tokens.length) throw new RangeError('the same token listed twice');
}

const HEADER_RE = /^v1;kid=([0-9a-f]{16});ts=(\d{1,15});nonce=([A-Za-z0-9_-]{22});aud=([A-Za-z0-9._:[\]/-]{1,300});sig=([A-Za-z0-9_-]{43})$/;

export interface ClusterAuthInit {
  /** The cluster token, which signs (a token file's first line); undefined runs the cluster open (no checks, nothing signed). */
  token: string | undefined;
  /**
   * More tokens accepted but not signing (a token file's later lines); at most
   * MAX_LISTED_TOKENS with `token`, none equal. Ignored when the cluster runs open.
   * @default []
   */
  acceptedTokens?: readonly string[] | undefined;
  /** @default DEFAULT_TOKEN_GRACE_MS */
  graceMs?: number | undefined;
  /** @default MAX_REMEMBERED_NONCES */
  maxNonces?: number | undefined;
}

export class ClusterAuth {
  private readonly clock: Clock;
  private readonly graceMs: number;
  private readonly nonces: NonceCache;
  /** At most MAX_KEYS, in no particular order; empty when the cluster runs open. */
  private keys: Key[];
  /** The tokens as last listed, the signing one first. */
  private listed: readonly string[];

  constructor(components: { clock?: Clock } = {}, init: ClusterAuthInit) {
    this.clock = components.clock ?? systemClock;
    this.graceMs = init.graceMs ?? DEFAULT_TOKEN_GRACE_MS;
    if (!Number.isFinite(this.graceMs) || this.graceMs < 0) throw new RangeError(`token grace ${this.graceMs} ms must be ≥ 0`);
    this.nonces = new NonceCache(init.maxNonces ?? MAX_REMEMBERED_NONCES);
    this.listed = init.token === undefined ? [] : [init.token, ...(init.acceptedTokens ?? [])];
    if (init.token !== undefined) checkTokenList(this.listed);
    // At start the first token signs at once; the others are accepted only.
    this.keys = this.listed.map((token, i) => deriveKey(token, i === 0 ? -Infinity : Infinity));
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
   * The token file's list (it was read again): the first signs, every one is
   * accepted. What changed, or nothing when the list is the same or the cluster
   * runs open (an open cluster does not start checking mid-run).
   * @throws RangeError for an empty list, more than MAX_LISTED_TOKENS, or a token listed twice (parseTokenText refuses those first)
   */
  setTokens(tokens: readonly string[]): TokenChange[] {
    if (this.keys.length === 0) return [];
    checkTokenList(tokens);
    const now = this.clock.now();
    this.prune(now);
    const signer = this.signingKey(now);
    const before = new Set(this.listed);
    const byToken = new Map(this.keys.map((k) => [k.token, k]));
    const changes: TokenChange[] = [];
    for (const [i, token] of tokens.entries()) {
      let key = byToken.get(token);
      const wasAccepted = key !== undefined;
      if (key === undefined) {
        key = deriveKey(token, Infinity);
        this.keys.push(key);
      }
      key.acceptUntilMs = Infinity;
      if (i === 0 && token !== this.listed[0]) {
        // A key waiting for its turn to sign (the first token changed again within the grace) never signs.
        for (const k of this.keys) if (k !== key && k.signFromMs > now) k.signFromMs = Infinity;
        // The one signing now goes on for the grace, so that peers yet to read the file accept us;
        // a token put back first before its successor signed simply keeps signing.
        if (key !== signer) key.signFromMs = now + this.graceMs;
        changes.push({ change: 'signing', kid: key.kid, signFromMs: Math.max(key.signFromMs, now), wasAccepted });
      } else if (i > 0 && !before.has(token)) {
        changes.push({ change: 'added', kid: key.kid, position: i + 1 });
      }
    }
    const now2Graces = now + 2 * this.graceMs;
    for (const token of this.listed) {
      const key = byToken.get(token);
      if (key === undefined || tokens.includes(token)) continue;
      key.acceptUntilMs = now2Graces;
      changes.push({ change: 'removed', kid: key.kid, acceptUntilMs: now2Graces });
    }
    this.listed = [...tokens];
    this.bound(now);
    return changes;
  }

  /**
   * A one-token list (a one-line token file): `setTokens([token])`. True when
   * the signing token changed.
   */
  rotate(token: string): boolean {
    return this.setTokens([token]).some((c) => c.change === 'signing');
  }

  /** Drops the keys no longer accepted (never a listed one, nor the one signing). */
  private prune(now: number): void {
    const signer = this.signingKey(now);
    this.keys = this.keys.filter((k) => k.acceptUntilMs > now || k === signer);
  }

  /** Keeps MAX_KEYS: unlisted keys whose acceptance ends first go first. */
  private bound(now: number): void {
    if (this.keys.length <= MAX_KEYS) return;
    const signer = this.signingKey(now);
    const droppable = this.keys.filter((k) => k.acceptUntilMs !== Infinity && k !== signer).sort((a, b) => a.acceptUntilMs - b.acceptUntilMs);
    const drop = new Set(droppable.slice(0, this.keys.length - MAX_KEYS));
    this.keys = this.keys.filter((k) => !drop.has(k));
  }

  /** The key whose turn to sign came last. */
  private signingKey(now: number): Key | undefined {
    let signer: Key | undefined;
    for (const k of this.keys) if (k.signFromMs <= now && (signer === undefined || k.signFromMs > signer.signFromMs)) signer = k;
    return signer;
  }

  /** Keys held now: listed, within their grace, or signing (at most MAX_KEYS). */
  get keyCount(): number {
    return this.keys.length;
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
