/**
 * A registry token server for tests (the Docker "token authentication" flow that
 * distribution's `auth: token:` speaks), on 127.0.0.1.
 *
 * docker-registry answers an unauthenticated request with
 *   401 WWW-Authenticate: Bearer realm="<this server>/token",service="...",scope="repository:<repo>:pull"
 * The client asks this server for a token: `GET /token?service=&scope=...` with Basic
 * credentials (or none), or the OAuth2 form `POST /token` (grant_type=password) that
 * containerd tries first. The answer is a JWT signed RS256 with a key whose self-signed
 * certificate (made with the `openssl` CLI) is the registry's `rootcertbundle`.
 *
 * What distribution 2.8 checks (registry/auth/token/token.go, accesscontroller.go):
 * `iss` is the configured issuer, `aud` (a single string in 2.8) is the service, `exp`
 * and `nbf` within 60 s of leeway, and the signing key is trusted: the header carries
 * either `x5c` (a chain ending at a root of the bundle) or `kid`, looked up among the
 * bundle's keys by their libtrust key ID (see `libtrustKeyId`). Tokens here carry `kid`.
 * The `access` claim lists `{type, name, actions}`: the registry grants exactly that.
 */
import { createPrivateKey, randomBytes, sign, timingSafeEqual, X509Certificate, createHash, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { makeTempDir, removeTempDir, runChecked } from './processes.js';
import { whichTool } from './require-tools.js';

export type TokenAction = 'pull' | 'push' | 'delete' | '*';

/**
 * Repository name → the actions allowed on it. A key ending in `*` is a prefix
 * (`private/*`); `*` alone matches every repository.
 */
export type TokenAccessRules = Readonly<Record<string, readonly TokenAction[]>>;

export interface TokenUser {
  username: string;
  password: string;
  access: TokenAccessRules;
}

export interface TokenServerOptions {
  users?: readonly TokenUser[];
  /** What a client without credentials may do. @default {} (nothing) */
  anonymousAccess?: TokenAccessRules;
  /** The `service` of the challenge and the tokens' audience. @default 'shoal-testkit-registry' */
  service?: string;
  /** The tokens' issuer. @default 'shoal-testkit-token-issuer' */
  issuer?: string;
  /** Token lifetime. @default 300 */
  tokenTtlSeconds?: number;
}

/** One access entry of a token (the JWT `access` claim). */
export interface TokenAccess {
  type: string;
  name: string;
  actions: string[];
}

/** One request the token server answered. */
export interface TokenIssue {
  method: string;
  /** Undefined for an anonymous request. */
  username: string | undefined;
  scopes: string[];
  status: number;
  /** What the token grants (empty for a refusal). */
  granted: TokenAccess[];
}

export interface RunningTokenServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `http://127.0.0.1:PORT/token`: the registry's `auth.token.realm`. */
  realm: string;
  service: string;
  issuer: string;
  /** PEM of the self-signed certificate: the registry's `auth.token.rootcertbundle`. */
  certPath: string;
  /** libtrust key ID of the signing key (the tokens' `kid`). */
  keyId: string;
  /** Every request answered so far, in order. */
  issued(): TokenIssue[];
  /** Signs a token granting `access` to `subject` directly (for tests that need one). */
  sign(subject: string, access: readonly TokenAccess[]): string;
  close(): Promise<void>;
}

const DEFAULT_SERVICE = 'shoal-testkit-registry';
const DEFAULT_ISSUER = 'shoal-testkit-token-issuer';
const DEFAULT_TOKEN_TTL_S = 300;
/** Largest request body read (the OAuth2 form). Bytes. */
const MAX_FORM_BYTES = 16 * 1024;
const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32_ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/**
 * The libtrust key ID of a public key (github.com/docker/libtrust util.go
 * keyIDFromCryptoKey): SHA-256 of the DER SubjectPublicKeyInfo, truncated to
 * 240 bits, base32 without padding, in 12 groups of 4 joined by ':'.
 */
export function libtrustKeyId(spkiDer: Uint8Array): string {
  const digest = createHash('sha256').update(spkiDer).digest().subarray(0, 30);
  const text = base32(digest);
  const groups: string[] = [];
  for (let i = 0; i < text.length; i += 4) groups.push(text.slice(i, i + 4));
  return groups.join(':');
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** `repository:name:actions` (name may hold ':' for host:port names) → parts; undefined if malformed. */
function parseScope(scope: string): { type: string; name: string; actions: string[] } | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last <= first) return undefined;
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(',').filter((a) => a !== '') };
}

function ruleMatches(pattern: string, name: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('*')) return name.startsWith(pattern.slice(0, -1));
  return pattern === name;
}

/** The requested actions the rules allow on `name`. */
function allowedActions(rules: TokenAccessRules, name: string, requested: readonly string[]): string[] {
  const allowed = new Set<string>();
  for (const [pattern, actions] of Object.entries(rules)) {
    if (!ruleMatches(pattern, name)) continue;
    for (const action of actions) allowed.add(action);
  }
  if (allowed.has('*')) return [...requested];
  return requested.filter((a) => allowed.has(a));
}

function equalSecret(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}

function parseBasic(header: string | undefined): { username: string; password: string } | undefined | 'invalid' {
  if (header === undefined || header === '') return undefined;
  const m = /^\s*basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (m?.[1] === undefined) return 'invalid';
  const text = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) return 'invalid';
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

async function readForm(request: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of request) {
    const buf = chunk as Buffer;
    total += buf.length;
    if (total > MAX_FORM_BYTES) throw new Error('form too large');
    chunks.push(buf);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
  response.end(text);
}

/** A self-signed RSA certificate and its key, made with the openssl CLI. */
async function makeSigningCert(dir: string): Promise<{ certPath: string; key: KeyObject; keyId: string }> {
  if ((await whichTool('openssl')) === undefined) {
    throw new Error('required tool not found on PATH: openssl. Install with: apt-get install -y --no-install-recommends openssl');
  }
  const keyPath = join(dir, 'token.key');
  const certPath = join(dir, 'token.crt');
  await runChecked('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
    '-subj', '/CN=shoal-testkit-token-signer', '-keyout', keyPath, '-out', certPath,
  ]);
  const key = createPrivateKey(await readFile(keyPath));
  const cert = new X509Certificate(await readFile(certPath));
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return { certPath, key, keyId: libtrustKeyId(spki) };
}

/** Starts the token server on 127.0.0.1 (a free port). */
export async function startTokenServer(options: TokenServerOptions = {}): Promise<RunningTokenServer> {
  const service = options.service ?? DEFAULT_SERVICE;
  const issuer = options.issuer ?? DEFAULT_ISSUER;
  const ttlSeconds = options.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_S;
  const users = new Map((options.users ?? []).map((u) => [u.username, u]));
  const anonymousAccess = options.anonymousAccess ?? {};
  const dir = await makeTempDir('token-server');
  let signing: { certPath: string; key: KeyObject; keyId: string };
  try {
    signing = await makeSigningCert(dir);
  } catch (err) {
    await removeTempDir(dir);
    throw err;
  }
  const log: TokenIssue[] = [];

  const signToken = (subject: string, access: readonly TokenAccess[]): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', kid: signing.keyId };
    const claims = {
      iss: issuer,
      sub: subject,
      aud: service,
      exp: now + ttlSeconds,
      nbf: now - 1,
      iat: now,
      jti: randomBytes(12).toString('hex'),
      access,
    };
    const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    // RS256 = RSASSA-PKCS1-v1_5 with SHA-256, node's default padding for RSA keys.
    const signature = sign('sha256', Buffer.from(input), signing.key);
    return `${input}.${base64url(signature)}`;
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/token') return sendJson(response, 404, { errors: [{ code: 'NOT_FOUND', message: 'only /token lives here' }] });
    let username: string | undefined;
    let password: string | undefined;
    let scopes: string[];
    let requestedService: string | null;
    if (request.method === 'GET') {
      const basic = parseBasic(request.headers.authorization);
      if (basic === 'invalid') {
        log.push({ method: 'GET', username: undefined, scopes: [], status: 400, granted: [] });
        return sendJson(response, 400, { errors: [{ code: 'UNSUPPORTED', message: 'only Basic credentials are accepted' }] });
      }
      username = basic?.username;
      password = basic?.password;
      scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter((s) => s !== '');
      requestedService = url.searchParams.get('service');
    } else if (request.method === 'POST') {
      const form = await readForm(request);
      if (form.get('grant_type') !== 'password') {
        log.push({ method: 'POST', username: undefined, scopes: [], status: 400, granted: [] });
        return sendJson(response, 400, { error: 'unsupported_grant_type' });
      }
      username = form.get('username') ?? undefined;
      password = form.get('password') ?? '';
      scopes = (form.get('scope') ?? '').split(' ').filter((s) => s !== '');
      requestedService = form.get('service');
    } else {
      return sendJson(response, 405, { errors: [{ code: 'UNSUPPORTED', message: 'GET or POST' }] }, { allow: 'GET, POST' });
    }
    const method = request.method;
    if (requestedService !== null && requestedService !== service) {
      log.push({ method, username, scopes, status: 400, granted: [] });
      return sendJson(response, 400, { errors: [{ code: 'UNSUPPORTED', message: `unknown service ${requestedService}` }] });
    }
    let rules: TokenAccessRules = anonymousAccess;
    if (username !== undefined) {
      const user = users.get(username);
      if (user === undefined || !equalSecret(user.password, password ?? '')) {
        log.push({ method, username, scopes, status: 401, granted: [] });
        return sendJson(response, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'wrong user name or password' }] }, {
          'www-authenticate': `Basic realm="${service}"`,
        });
      }
      rules = user.access;
    }
    // Like distribution's reference token servers: scopes the caller may not have are
    // left out of the token, not refused; the registry then answers 401 for them.
    const granted: TokenAccess[] = [];
    for (const scope of scopes) {
      const parsed = parseScope(scope);
      if (parsed === undefined || parsed.type !== 'repository') continue;
      const actions = allowedActions(rules, parsed.name, parsed.actions);
      if (actions.length > 0) granted.push({ type: 'repository', name: parsed.name, actions });
    }
    const token = signToken(username ?? '', granted);
    log.push({ method, username, scopes, status: 200, granted });
    sendJson(response, 200, { token, access_token: token, expires_in: ttlSeconds, issued_at: new Date().toISOString() });
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((err: unknown) => {
      if (!response.headersSent) sendJson(response, 400, { errors: [{ code: 'UNSUPPORTED', message: err instanceof Error ? err.message : String(err) }] });
      else response.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  let closing: Promise<void> | undefined;
  return {
    url,
    realm: `${url}/token`,
    service,
    issuer,
    certPath: signing.certPath,
    keyId: signing.keyId,
    issued: () => [...log],
    sign: signToken,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await removeTempDir(dir);
      })();
      return closing;
    },
  };
}
