import type { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import {
  destroyQuietly,
  readBounded,
  BadRequestError,
  UpstreamError,
  backoffMs,
  delay,
  parseDigest,
  parseRegistryHost,
  parseRepository,
  sha256Hex,
  systemClock,
  type Clock,
  type Logger,
} from '@shoal/core';
import { findChallenge, parseWwwAuthenticate, type AuthChallenge } from './parse-www-authenticate.js';
import { parseRetryAfter } from './parse-retry-after.js';
import { MAX_TOKEN_RESPONSE_BYTES, parseTokenResponse } from './parse-token-response.js';
import { TokenCache } from './token-cache.js';
import { classifyTransportError } from './transport-failure.js';
import type { BlobFetchOptions, RegistryClientApi, RegistryClientInit, RegistryRequest, RegistryResponse } from './types.js';

/** @default retries after the first attempt */
export const DEFAULT_MAX_RETRIES = 3;
/** milliseconds */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** milliseconds */
export const DEFAULT_HEADERS_TIMEOUT_MS = 30_000;
/** milliseconds */
export const DEFAULT_BODY_TIMEOUT_MS = 30_000;
/** milliseconds */
export const DEFAULT_RETRY_BASE_MS = 200;
/** Longest computed backoff between two attempts (milliseconds). */
export const MAX_BACKOFF_MS = 10_000;
/**
 * Longest `Retry-After` we wait for (milliseconds). A registry asking for more
 * (Docker Hub's pull limit says hours) gets its answer returned at once: a pull
 * stalled that long helps nobody, and the caller can fall back.
 */
export const MAX_RETRY_AFTER_MS = 30_000;
/** Redirects followed for one request. */
export const MAX_REDIRECTS = 5;
/** Connections per origin in the client's own Agent. */
export const CONNECTIONS_PER_ORIGIN = 16;
/** Idle keep-alive before a pooled socket is closed (milliseconds). */
export const KEEP_ALIVE_TIMEOUT_MS = 10_000;
/** How long close() waits for in-flight requests before destroying sockets (milliseconds). */
export const CLOSE_GRACE_MS = 5_000;
/** Bytes of a discarded body (a retried 503, a followed 3xx) read to keep its connection reusable. */
const DISCARD_LIMIT_BYTES = 64 * 1024;

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const USER_AGENT = 'shoal-registry-client/0.1';

// Caller headers that must not ride along: credentials go through `authorization`
// only (so they can be stripped on cross-origin redirects); the rest is hop-by-hop.
const DROPPED_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'host',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'content-length',
  'expect',
]);

export interface RegistryClientComponents {
  log: Logger;
  /** Shared dispatcher; when given, the client neither creates nor closes its own Agent. */
  dispatcher?: Dispatcher;
  /** For token expiry and `Retry-After` dates. @default systemClock */
  clock?: Clock;
}

interface FollowResult {
  response: RegistryResponse;
  /** The final response came from the registry's own origin (not a redirect target elsewhere). */
  fromRegistry: boolean;
}

type AuthKind = 'none' | 'basic' | 'bearer' | 'other';

function authKind(authorization: string | undefined): AuthKind {
  if (authorization === undefined) return 'none';
  const scheme = /^\s*([^\s]+)/.exec(authorization)?.[1]?.toLowerCase();
  if (scheme === 'basic') return 'basic';
  if (scheme === 'bearer') return 'bearer';
  return 'other';
}

/** `/v2/<name>/(blobs|manifests|tags|referrers)/...` → name, for a token guess before the first request. */
function repositoryOfPath(pathname: string): string | undefined {
  const m = /^\/v2\/(.+?)\/(?:blobs|manifests|tags|referrers)\//.exec(pathname);
  return m?.[1];
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/** Origin and path only: signed CDN URLs carry secrets in their query. */
function forLog(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

function normaliseHeaders(raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    const key = name.toLowerCase();
    if (key === '__proto__') continue;
    const text = Array.isArray(value) ? value.join(', ') : value;
    out[key] = out[key] === undefined ? text : `${out[key]}, ${text}`;
  }
  return out;
}

/** Drains a body we will not hand out, so its connection can be reused; never throws. */
function discard(body: Readable & { dump?: (opts?: { limit: number }) => Promise<void> }): void {
  if (typeof body.dump === 'function') {
    body.dump({ limit: DISCARD_LIMIT_BYTES }).catch(() => {});
  } else {
    destroyQuietly(body);
  }
}

/** Waits for `promise` but gives up with the signal's reason as soon as it aborts. */
function raceSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/**
 * HTTP client for OCI registries; see RegistryClientApi for the contract.
 * Tokens are cached per (registry, scope, credential) and, for repository
 * paths, sent on the first attempt, so a pull of many blobs costs one realm
 * round trip rather than one 401 per blob.
 */
export class RegistryClient implements RegistryClientApi {
  private readonly log: Logger;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly clock: Clock;
  private readonly plainHttp: ReadonlySet<string>;
  private readonly maxRetries: number;
  private readonly headersTimeoutMs: number;
  private readonly bodyTimeoutMs: number;
  private readonly retryBaseMs: number;
  private readonly tokens: TokenCache;
  /** Token fetches in flight, so a burst of requests for one scope asks the realm once. Bounded by the cache's keys. */
  private readonly tokenFetches = new Map<string, Promise<string | undefined>>();

  constructor(components: RegistryClientComponents, init: RegistryClientInit = {}) {
    this.log = components.log.child({ module: 'registry-client' });
    this.clock = components.clock ?? systemClock;
    this.plainHttp = new Set((init.plainHttpHosts ?? []).map((h) => h.toLowerCase()));
    this.maxRetries = Math.max(0, init.maxRetries ?? DEFAULT_MAX_RETRIES);
    this.headersTimeoutMs = init.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
    this.bodyTimeoutMs = init.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS;
    this.retryBaseMs = init.retryBaseMs ?? DEFAULT_RETRY_BASE_MS;
    this.tokens = new TokenCache(this.clock);
    if (components.dispatcher !== undefined) {
      this.dispatcher = components.dispatcher;
      this.ownsDispatcher = false;
    } else {
      this.dispatcher = new Agent({
        connections: CONNECTIONS_PER_ORIGIN,
        keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
        connect: { timeout: init.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS },
        headersTimeout: this.headersTimeoutMs,
        bodyTimeout: this.bodyTimeoutMs,
      });
      this.ownsDispatcher = true;
    }
  }

  baseUrl(registry: string): string {
    const host = parseRegistryHost(registry);
    return `${this.isPlainHttp(host) ? 'http' : 'https'}://${host}`;
  }

  async request(request: RegistryRequest): Promise<RegistryResponse> {
    const { registry, method, signal } = request;
    if (method !== 'GET' && method !== 'HEAD') throw new BadRequestError(`unsupported method ${String(method)}`);
    const base = new URL(this.baseUrl(registry));
    if (!request.path.startsWith('/v2/') || /[\s#]/.test(request.path)) {
      throw new BadRequestError(`registry path must start with /v2/: ${JSON.stringify(request.path.slice(0, 100))}`);
    }
    const url = new URL(request.path, base);
    if (url.origin !== base.origin || !url.pathname.startsWith('/v2/')) {
      throw new BadRequestError(`registry path escapes /v2/: ${JSON.stringify(request.path.slice(0, 100))}`);
    }
    const headers: Record<string, string> = { 'user-agent': USER_AGENT };
    for (const [name, value] of Object.entries(request.headers ?? {})) {
      const key = name.toLowerCase();
      if (!DROPPED_HEADERS.has(key) && key !== '__proto__') headers[key] = value;
    }

    // An empty header is no credential.
    const credential = request.authorization !== undefined && request.authorization.trim() !== '' ? request.authorization : undefined;
    const kind = authKind(credential);
    // A caller's own Bearer (or unknown scheme) is theirs to manage: pass it and its 401 through.
    if (kind !== 'none' && kind !== 'basic') return (await this.follow(url, method, headers, credential, signal)).response;

    const credentialHash = sha256Hex(credential ?? '');
    let cached: { key: string; token: string } | undefined;
    const repository = repositoryOfPath(url.pathname);
    if (repository !== undefined) {
      const key = TokenCache.key(base.host, `repository:${repository}:pull`, credentialHash);
      const token = this.tokens.get(key);
      if (token !== undefined) cached = { key, token };
    }

    const first = await this.follow(url, method, headers, cached === undefined ? credential : `Bearer ${cached.token}`, signal);
    if (first.response.statusCode !== 401 || !first.fromRegistry) return first.response;
    if (cached !== undefined) this.tokens.delete(cached.key, cached.token);

    const bearer = findChallenge(parseWwwAuthenticate(first.response.headers['www-authenticate']), 'bearer');
    if (bearer?.params.realm === undefined) {
      if (cached === undefined) return first.response;
      // Our cached token displaced the caller's credential; let the registry see the real one.
      discard(first.response.body);
      return (await this.follow(url, method, headers, credential, signal)).response;
    }

    let token: string | undefined;
    try {
      token = await this.obtainToken(base.host, bearer, credential, credentialHash, cached?.token, signal);
    } catch (err) {
      discard(first.response.body);
      throw err;
    }
    if (token === undefined) return first.response;
    discard(first.response.body);
    return (await this.follow(url, method, headers, `Bearer ${token}`, signal)).response;
  }

  async getBlob(options: BlobFetchOptions): Promise<RegistryResponse> {
    return this.request(this.blobRequest('GET', options));
  }

  async headBlob(options: BlobFetchOptions): Promise<RegistryResponse> {
    return this.request(this.blobRequest('HEAD', options));
  }

  async close(): Promise<void> {
    this.tokens.clear();
    if (!this.ownsDispatcher) return;
    // close() waits for bodies nobody reads; don't let one stalled upstream hold shutdown.
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), CLOSE_GRACE_MS);
    });
    // A close overtaken by destroy() may settle late, or reject: never unhandled.
    const closing = this.dispatcher.close().then(
      () => 'closed' as const,
      () => 'closed' as const,
    );
    try {
      if ((await Promise.race([closing, grace])) === 'timeout') {
        this.log.warn({ graceMs: CLOSE_GRACE_MS }, 'registry connections still busy at close, destroying them');
        await this.dispatcher.destroy();
      }
    } finally {
      clearTimeout(timer);
    }
  }

  private blobRequest(method: 'GET' | 'HEAD', options: BlobFetchOptions): RegistryRequest {
    const repository = parseRepository(options.repository);
    const digest = parseDigest(options.digest);
    return {
      registry: options.registry,
      path: `/v2/${repository}/blobs/${digest}`,
      method,
      headers: options.range === undefined ? {} : { range: options.range },
      authorization: options.authorization,
      signal: options.signal,
    };
  }

  private isPlainHttp(hostPort: string): boolean {
    const host = hostPort.toLowerCase();
    if (this.plainHttp.has(host)) return true;
    // `host` alone means port 80 over http.
    return !/:\d+$/.test(host) && this.plainHttp.has(`${host}:80`);
  }

  /** Follows redirects itself (at most MAX_REDIRECTS), sending `authorization` only to the registry's origin. */
  private async follow(
    start: URL,
    method: 'GET' | 'HEAD',
    headers: Record<string, string>,
    authorization: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<FollowResult> {
    const registryOrigin = start.origin;
    const seen = new Set<string>([start.href]);
    let url = start;
    for (let hop = 0; ; hop++) {
      const fromRegistry = url.origin === registryOrigin;
      const sent = authorization !== undefined && fromRegistry ? { ...headers, authorization } : headers;
      const response = await this.fetchWithRetry(url, method, sent, signal);
      const status = response.statusCode;
      if (!REDIRECT_STATUSES.has(status)) return { response, fromRegistry };
      discard(response.body);
      const location = response.headers.location;
      if (location === undefined || location === '') {
        throw new UpstreamError(`${method} ${forLog(url)}: ${status} without Location`, { upstreamStatus: status });
      }
      if (hop >= MAX_REDIRECTS) throw new UpstreamError(`${method} ${forLog(start)}: more than ${MAX_REDIRECTS} redirects`, { upstreamStatus: status });
      let next: URL;
      try {
        next = new URL(location, url);
      } catch (err) {
        throw new UpstreamError(`${method} ${forLog(url)}: invalid Location ${JSON.stringify(location.slice(0, 200))}`, { upstreamStatus: status, cause: err });
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        throw new UpstreamError(`${method} ${forLog(url)}: redirect to unsupported scheme ${next.protocol}`, { upstreamStatus: status });
      }
      next.hash = '';
      if (seen.has(next.href)) throw new UpstreamError(`${method} ${forLog(start)}: redirect loop at ${forLog(next)}`, { upstreamStatus: status });
      seen.add(next.href);
      this.log.debug({ from: forLog(url), to: forLog(next), status, hop: hop + 1 }, 'following redirect');
      url = next;
    }
  }

  /**
   * One hop with retries: transport errors and retryable statuses are tried again
   * with full-jitter backoff (or the server's Retry-After). The last retryable
   * response is returned as is; the last transport error becomes an UpstreamError.
   */
  private async fetchWithRetry(
    url: URL,
    method: 'GET' | 'HEAD',
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<RegistryResponse> {
    for (let attempt = 0; ; attempt++) {
      signal?.throwIfAborted();
      let data: Dispatcher.ResponseData;
      try {
        data = await this.dispatcher.request({
          origin: url.origin,
          path: `${url.pathname}${url.search}`,
          method,
          headers,
          signal: signal ?? null,
          headersTimeout: this.headersTimeoutMs,
          bodyTimeout: this.bodyTimeoutMs,
        });
      } catch (err) {
        if (signal?.aborted === true) throw signal.reason;
        const failure = classifyTransportError(err);
        const message = err instanceof Error ? err.message : String(err);
        if (!failure.retryable || attempt >= this.maxRetries) {
          this.log.debug({ method, url: forLog(url), code: failure.code, attempt }, 'registry request failed');
          throw new UpstreamError(`${method} ${forLog(url)}: ${failure.code ?? message}`, { statusCode: failure.statusCode, cause: err });
        }
        const waitMs = backoffMs(attempt, this.retryBaseMs, MAX_BACKOFF_MS);
        this.log.warn({ method, url: forLog(url), code: failure.code, attempt: attempt + 1, delayMs: waitMs }, 'registry unreachable, retrying');
        await delay(waitMs, signal);
        continue;
      }
      const response: RegistryResponse = { statusCode: data.statusCode, headers: normaliseHeaders(data.headers), body: data.body };
      const status = response.statusCode;
      this.log.debug({ method, url: forLog(url), status, attempt }, 'registry response');
      if (!isRetryableStatus(status) || attempt >= this.maxRetries) return response;
      const retryAfterMs = parseRetryAfter(response.headers['retry-after'], this.clock.now());
      if (retryAfterMs !== undefined && retryAfterMs > MAX_RETRY_AFTER_MS) {
        this.log.warn({ method, url: forLog(url), status, retryAfterMs }, 'registry asks to retry too late, giving up');
        return response;
      }
      const waitMs = retryAfterMs ?? backoffMs(attempt, this.retryBaseMs, MAX_BACKOFF_MS);
      discard(response.body);
      this.log.warn({ method, url: forLog(url), status, attempt: attempt + 1, delayMs: waitMs }, 'registry answered with a retryable status, retrying');
      await delay(waitMs, signal);
    }
  }

  /** A token for the challenge: cached, joined to a fetch in flight, or fetched. Undefined when none can be had. */
  private obtainToken(
    registry: string,
    challenge: AuthChallenge,
    credential: string | undefined,
    credentialHash: string,
    rejected: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<string | undefined> {
    const scope = challenge.params.scope ?? '';
    const key = TokenCache.key(registry, scope, credentialHash);
    const cached = this.tokens.get(key);
    if (cached !== undefined && cached !== rejected) return Promise.resolve(cached);
    let fetching = this.tokenFetches.get(key);
    if (fetching === undefined) {
      // Not tied to one caller's signal: others may be waiting for the same token.
      fetching = this.fetchToken(registry, challenge, scope, credential, key).finally(() => this.tokenFetches.delete(key));
      this.tokenFetches.set(key, fetching);
    }
    return raceSignal(fetching, signal);
  }

  private async fetchToken(
    registry: string,
    challenge: AuthChallenge,
    scope: string,
    credential: string | undefined,
    key: string,
  ): Promise<string | undefined> {
    const realm = challenge.params.realm ?? '';
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      this.log.warn({ registry, realm: realm.slice(0, 200) }, 'bearer challenge with an invalid realm');
      return undefined;
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      this.log.warn({ registry, realm: forLog(url) }, 'bearer realm is not http(s)');
      return undefined;
    }
    if (credential !== undefined && url.protocol === 'http:' && !this.isPlainHttp(url.host) && !isLoopback(url.hostname)) {
      // Credentials in clear text to a host nobody declared plain-HTTP: refuse.
      this.log.warn({ registry, realm: forLog(url) }, 'not sending credentials to a plain-http token realm');
      return undefined;
    }
    url.hash = '';
    const service = challenge.params.service;
    if (service !== undefined) url.searchParams.append('service', service);
    // Like containerd: one `scope` parameter per space-separated scope of the challenge.
    for (const s of scope.split(/\s+/)) if (s !== '') url.searchParams.append('scope', s);
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': USER_AGENT };
    if (credential !== undefined) headers.authorization = credential;

    let response: RegistryResponse;
    try {
      response = await this.fetchWithRetry(url, 'GET', headers, undefined);
    } catch (err) {
      this.log.warn({ registry, realm: forLog(url), err }, 'token realm unreachable');
      return undefined;
    }
    if (response.statusCode !== 200) {
      discard(response.body);
      this.log.warn({ registry, realm: forLog(url), status: response.statusCode }, 'token realm refused');
      return undefined;
    }
    const declared = Number(response.headers['content-length']);
    if (Number.isFinite(declared) && declared > MAX_TOKEN_RESPONSE_BYTES) {
      destroyQuietly(response.body);
      this.log.warn({ registry, realm: forLog(url), bytes: declared }, 'token response too large');
      return undefined;
    }
    try {
      const parsed = parseTokenResponse((await readBounded(response.body, MAX_TOKEN_RESPONSE_BYTES, () => new UpstreamError(`token response larger than ${MAX_TOKEN_RESPONSE_BYTES} bytes`))).toString('utf8'));
      this.tokens.set(key, parsed.token, parsed.expiresInSeconds * 1000);
      this.log.debug({ registry, scope, expiresInSeconds: parsed.expiresInSeconds }, 'bearer token obtained');
      return parsed.token;
    } catch (err) {
      this.log.warn({ registry, realm: forLog(url), err }, 'unusable token response');
      return undefined;
    }
  }
}

function isRetryableStatus(status: number): boolean {
  // 501 and 505 say "never"; every other 5xx may pass.
  return status === 429 || (status >= 500 && status <= 599 && status !== 501 && status !== 505);
}
