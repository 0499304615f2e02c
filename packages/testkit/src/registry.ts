/**
 * A real registry for tests: `docker-registry serve` (distribution 2.8) on 127.0.0.1,
 * with its own storage directory and config file, and `skopeo` to push OCI layouts.
 *
 * Access log: with `log.formatter: json`, distribution writes one JSON object per
 * finished request to stderr, e.g.
 *   {"http.request.method":"GET","http.request.uri":"/v2/test/app/blobs/sha256:…",
 *    "http.response.status":200,"http.response.written":3146240,
 *    "msg":"response completed","vars.name":"test/app","vars.digest":"sha256:…",…}
 * ("response completed with error" for 4xx/5xx). The Apache-style lines on stdout are
 * not used.
 */
import { createHash } from 'node:crypto';
import { mkdir, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify as stringifyYaml } from 'yaml';
import { isDigest, type Digest } from '@shoal/core';
import { freePort, groupListensOn, makeTempDir, minimalEnv, removeTempDir, runChecked, spawnProcess, waitFor, type ManagedProcess } from './processes.js';
import { startTokenServer, type RunningTokenServer, type TokenServerOptions } from './token-server.js';

export interface Credentials {
  username: string;
  password: string;
}

export interface StartRegistryOptions {
  /** Require HTTP basic auth with these credentials (htpasswd, bcrypt). */
  htpasswd?: Credentials;
  /**
   * Require bearer tokens (`auth: token:`) from a token server started with
   * these users and rules (see token-server.ts); stopped with the registry.
   * Exclusive with `htpasswd`.
   */
  tokenAuth?: TokenServerOptions;
  /** Make it a pull-through cache of this registry (`proxy.remoteurl`). */
  proxyRemoteUrl?: string;
  /** Credentials for the remote of a pull-through cache. */
  proxyCredentials?: Credentials;
  /** @default '127.0.0.1' */
  listenHost?: string;
  /** Use this storage directory (kept on stop) instead of a fresh temp one. */
  dataDir?: string;
  /** @default 30000 */
  readyTimeoutMs?: number;
  /** Listen on this port, every attempt, instead of a free one (for testing the kit's own start). */
  port?: number;
}

export interface RegistryRequest {
  method: string;
  uri: string;
  status: number;
  /** Response body bytes written. */
  writtenBytes: number | undefined;
  /** `vars.name`: the repository, when the route has one. */
  repository: string | undefined;
  /** `vars.digest`, or the digest in a `/blobs/` URI. */
  digest: Digest | undefined;
  /** When the response completed (the registry had written its last byte), RFC 3339. */
  time: string | undefined;
  /** `http.response.duration`, in ms. */
  durationMs: number | undefined;
  /** `http.request.remoteaddr` without its port. */
  remoteAddr: string | undefined;
}

/** A Go duration as the registry logs it (`22.3s`, `1m2.5s`, `412.1ms`, `85µs`), in ms; NaN if it is not one. */
export function goDurationMs(text: string): number {
  const unitMs: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 1e-3, µs: 1e-3, ns: 1e-6 };
  const parts = [...text.matchAll(/([0-9.]+)(h|ms|m|s|us|µs|ns)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) return Number.NaN;
  return parts.reduce((sum, p) => sum + Number(p[1]) * (unitMs[p[2] as string] as number), 0);
}

export interface RunningRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  /** `http://127.0.0.1:PORT` */
  url: string;
  port: number;
  dataDir: string;
  configPath: string;
  process: ManagedProcess;
  /** The token server, when started with `tokenAuth`. */
  tokenServer: RunningTokenServer | undefined;
  /** Count of GET /v2/<repo>/blobs/<digest> answered 200, per digest. */
  blobGets(): Promise<Map<Digest, number>>;
  /** Every finished request, parsed from the JSON access log, in order. */
  requests(): Promise<RegistryRequest[]>;
  /** The raw lines of the registry's JSON log (stderr). */
  logLines(): Promise<string[]>;
  stop(): Promise<void>;
}

const BLOB_URI_RE = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})(?:\?.*)?$/;
const START_ATTEMPTS = 5;

interface TokenAuthConfig {
  realm: string;
  service: string;
  issuer: string;
  rootCertBundle: string;
}

/** docker-registry (distribution 2.8) config: JSON access log on stderr, one object per finished request. */
export function registryConfig(o: {
  addr: string;
  dataDir: string;
  htpasswdPath?: string;
  token?: TokenAuthConfig;
  proxy?: { url: string; creds?: Credentials };
}): string {
  const config: Record<string, unknown> = {
    version: '0.1',
    log: { level: 'info', formatter: 'json' },
    storage: {
      filesystem: { rootdirectory: o.dataDir },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    // A fixed secret silences the "no HTTP secret" warning; irrelevant for one instance.
    http: { addr: o.addr, secret: 'shoal-testkit' },
  };
  if (o.htpasswdPath !== undefined) config.auth = { htpasswd: { realm: 'shoal-testkit', path: o.htpasswdPath } };
  if (o.token !== undefined) {
    config.auth = { token: { realm: o.token.realm, service: o.token.service, issuer: o.token.issuer, rootcertbundle: o.token.rootCertBundle } };
  }
  if (o.proxy !== undefined) {
    config.proxy = { remoteurl: o.proxy.url, ...(o.proxy.creds === undefined ? {} : { username: o.proxy.creds.username, password: o.proxy.creds.password }) };
  }
  return stringifyYaml(config);
}

/** Whether a logged request is a GET of a blob (any status: callers say which answers count). */
export function isBlobGet(r: RegistryRequest): boolean {
  return r.method === 'GET' && r.digest !== undefined && BLOB_URI_RE.test(r.uri);
}

/** One finished request from a line of the registry's JSON log, or undefined for any other line. */
export function parseRegistryLogLine(line: string): RegistryRequest | undefined {
  if (!line.startsWith('{')) return undefined;
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const method = entry['http.request.method'];
  const uri = entry['http.request.uri'];
  const status = entry['http.response.status'];
  if (typeof method !== 'string' || typeof uri !== 'string' || typeof status !== 'number') return undefined;
  const msg = entry.msg;
  if (typeof msg !== 'string' || !msg.startsWith('response completed')) return undefined;
  const written = entry['http.response.written'];
  const name = entry['vars.name'];
  const varsDigest = entry['vars.digest'];
  const uriDigest = BLOB_URI_RE.exec(uri)?.[2];
  const digest = typeof varsDigest === 'string' && isDigest(varsDigest) ? varsDigest : uriDigest !== undefined && isDigest(uriDigest) ? uriDigest : undefined;
  const time = entry.time;
  const duration = entry['http.response.duration'];
  const durationMs = typeof duration === 'string' ? goDurationMs(duration) : Number.NaN;
  const remoteAddr = entry['http.request.remoteaddr'];
  return {
    method,
    uri,
    status,
    writtenBytes: typeof written === 'number' ? written : undefined,
    repository: typeof name === 'string' ? name : undefined,
    digest,
    time: typeof time === 'string' ? time : undefined,
    durationMs: Number.isNaN(durationMs) ? undefined : durationMs,
    remoteAddr: typeof remoteAddr === 'string' ? remoteAddr.replace(/:\d+$/, '') : undefined,
  };
}

/** `htpasswd -Bbn` (bcrypt: distribution accepts nothing else). */
async function htpasswdLine(creds: Credentials): Promise<string> {
  if (creds.username.includes(':')) throw new Error('htpasswd user names cannot contain ":"');
  const result = await runChecked('htpasswd', ['-Bbn', creds.username, creds.password]);
  return `${result.stdout.trim()}\n`;
}

async function isRegistryUp(url: string): Promise<boolean> {
  const response = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2_000) });
  await response.body?.cancel();
  return response.status === 200 || response.status === 401;
}

/** Starts `docker-registry serve` on a free port and waits until `GET /v2/` answers. */
export async function startRegistry(options: StartRegistryOptions = {}): Promise<RunningRegistry> {
  const listenHost = options.listenHost ?? '127.0.0.1';
  if (options.htpasswd !== undefined && options.tokenAuth !== undefined) throw new Error('startRegistry: htpasswd and tokenAuth exclude each other');
  const tokenServer = options.tokenAuth === undefined ? undefined : await startTokenServer(options.tokenAuth);
  try {
    return await startRegistryWith(options, listenHost, tokenServer);
  } catch (err) {
    await tokenServer?.close();
    throw err;
  }
}

async function startRegistryWith(options: StartRegistryOptions, listenHost: string, tokenServer: RunningTokenServer | undefined): Promise<RunningRegistry> {
  const baseDir = await makeTempDir('registry');
  const token: TokenAuthConfig | undefined =
    tokenServer === undefined
      ? undefined
      : { realm: tokenServer.realm, service: tokenServer.service, issuer: tokenServer.issuer, rootCertBundle: tokenServer.certPath };
  const dataDir = options.dataDir ?? join(baseDir, 'data');
  await mkdir(dataDir, { recursive: true });
  let htpasswdPath: string | undefined;
  if (options.htpasswd !== undefined) {
    htpasswdPath = join(baseDir, 'htpasswd');
    await writeFile(htpasswdPath, await htpasswdLine(options.htpasswd), { mode: 0o600 });
  }
  const configPath = join(baseDir, 'config.yml');

  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await freePort(listenHost));
    const addr = `${listenHost}:${port}`;
    const proxy = options.proxyRemoteUrl === undefined ? undefined : { url: options.proxyRemoteUrl, ...(options.proxyCredentials ? { creds: options.proxyCredentials } : {}) };
    await writeFile(
      configPath,
      registryConfig({
        addr,
        dataDir,
        ...(htpasswdPath !== undefined ? { htpasswdPath } : {}),
        ...(token !== undefined ? { token } : {}),
        ...(proxy !== undefined ? { proxy } : {}),
      }),
    );
    const proc = await spawnProcess({
      name: 'docker-registry',
      command: 'docker-registry',
      args: ['serve', configPath],
      cwd: baseDir,
      // distribution reads every REGISTRY_* variable as configuration: give it nothing.
      env: minimalEnv(),
      stdoutPath: join(baseDir, `registry-${attempt}.stdout.log`),
      stderrPath: join(baseDir, `registry-${attempt}.stderr.log`),
    });
    const host = `${listenHost.includes(':') ? `[${listenHost}]` : listenHost}:${port}`;
    const url = `http://${host}`;
    try {
      // Another test's registry may have bound the port first and answer for ours.
      const ours = async () => (await isRegistryUp(url)) && (await groupListensOn(proc.pid, port));
      await waitFor(ours, { process: proc, description: `docker-registry on ${addr}`, timeoutMs: options.readyTimeoutMs ?? 30_000 });
    } catch (err) {
      await proc.stop();
      const stderr = await proc.stderr();
      if (attempt < START_ATTEMPTS && stderr.includes('address already in use')) {
        await sleep(50);
        continue; // someone took the port between freePort() and bind()
      }
      await removeTempDir(baseDir);
      throw err;
    }

    const logLines = async (): Promise<string[]> => (await proc.stderr()).split('\n').filter((l) => l !== '');
    const requests = async (): Promise<RegistryRequest[]> => {
      const out: RegistryRequest[] = [];
      for (const line of await logLines()) {
        const r = parseRegistryLogLine(line);
        if (r !== undefined) out.push(r);
      }
      return out;
    };
    let stopped: Promise<void> | undefined;
    return {
      host,
      url,
      port,
      dataDir,
      configPath,
      process: proc,
      tokenServer,
      logLines,
      requests,
      async blobGets() {
        const counts = new Map<Digest, number>();
        for (const r of await requests()) {
          if (isBlobGet(r) && r.status === 200 && r.digest !== undefined) {
            counts.set(r.digest, (counts.get(r.digest) ?? 0) + 1);
          }
        }
        return counts;
      },
      stop() {
        stopped ??= (async () => {
          await proc.stop();
          await tokenServer?.close();
          // Keep a caller-given data dir; our temp dir goes (unless SHOAL_KEEP_TMP=1).
          await removeTempDir(baseDir);
        })();
        return stopped;
      },
    };
  }
}

export interface PushImageOptions {
  layoutDir: string;
  tag: string;
  /** `127.0.0.1:PORT` */
  registry: string;
  repository: string;
  /** Tag to push as. @default tag */
  destTag?: string;
  credentials?: Credentials;
  /** @default 300000 */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface PushResult {
  /** `<registry>/<repository>:<tag>` */
  reference: string;
  durationMs: number;
}

/**
 * Pushes an OCI layout's tag with skopeo, over plain HTTP, keeping digests
 * (`--preserve-digests`: skopeo would otherwise recompress) and all platforms.
 */
export async function pushImage(options: PushImageOptions): Promise<PushResult> {
  const destTag = options.destTag ?? options.tag;
  const reference = `${options.registry}/${options.repository}:${destTag}`;
  const args = ['copy', '--dest-tls-verify=false', '--preserve-digests', '--all', '--retry-times', '2'];
  if (options.credentials !== undefined) args.push('--dest-creds', `${options.credentials.username}:${options.credentials.password}`);
  args.push(`oci:${options.layoutDir}:${options.tag}`, `docker://${reference}`);
  // skopeo honours proxy variables and REGISTRY_AUTH_FILE: a clean environment keeps it on 127.0.0.1.
  const authDir = await makeTempDir('skopeo-auth');
  try {
    const authFile = join(authDir, 'auth.json');
    await writeFile(authFile, '{"auths":{}}\n');
    const result = await runChecked('skopeo', [args[0] as string, '--authfile', authFile, ...args.slice(1)], {
      env: minimalEnv({ HOME: authDir }),
      timeoutMs: options.timeoutMs ?? 300_000,
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
    });
    return { reference, durationMs: result.durationMs };
  } finally {
    await removeTempDir(authDir);
  }
}

/** Whether a registry's filesystem storage holds a blob (for assertions on what a cache stored). */
export async function registryHasBlob(dataDir: string, digest: Digest): Promise<boolean> {
  const hex = digest.slice('sha256:'.length);
  try {
    return (await stat(join(dataDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data'))).isFile();
  } catch {
    return false;
  }
}

/**
 * Puts a blob of `sizeBytes` zeros into a registry's filesystem storage as a sparse file,
 * linked into `repository`, so that the registry serves it and accepts a manifest naming it.
 * For blobs too large to write or hash in a test (64 GiB and more): its digest is the hash
 * of `name`, not of its bytes, so only reads that no digest check covers (ranges, HEAD,
 * manifests) may rely on it.
 */
export async function placeSparseBlob(dataDir: string, repository: string, sizeBytes: number, name: string): Promise<Digest> {
  const hex = createHash('sha256').update(name).digest('hex');
  const v2 = join(dataDir, 'docker', 'registry', 'v2');
  const blobDir = join(v2, 'blobs', 'sha256', hex.slice(0, 2), hex);
  await mkdir(blobDir, { recursive: true });
  await writeFile(join(blobDir, 'data'), '');
  await truncate(join(blobDir, 'data'), sizeBytes);
  const linkDir = join(v2, 'repositories', repository, '_layers', 'sha256', hex);
  await mkdir(linkDir, { recursive: true });
  await writeFile(join(linkDir, 'link'), `sha256:${hex}`);
  return `sha256:${hex}` as Digest;
}

/**
 * Pushes, as `toTag`, the OCI image manifest at `fromTag` with one more layer: `layer`
 * (a blob already in the repository, e.g. from placeSparseBlob). For images whose layers
 * cannot be built or pushed whole in a test.
 */
export async function pushManifestWithLayer(registryHost: string, repository: string, fromTag: string, toTag: string, layer: { digest: Digest; sizeBytes: number }): Promise<void> {
  const base = `http://${registryHost}/v2/${repository}/manifests`;
  const got = await fetch(`${base}/${fromTag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  if (got.status !== 200) throw new Error(`GET ${base}/${fromTag}: ${got.status} ${await got.text()}`);
  const manifest = (await got.json()) as { mediaType: string; layers: unknown[] };
  manifest.layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: layer.sizeBytes });
  const put = await fetch(`${base}/${toTag}`, { method: 'PUT', headers: { 'content-type': manifest.mediaType }, body: JSON.stringify(manifest) });
  if (put.status !== 201) throw new Error(`PUT ${base}/${toTag}: ${put.status} ${await put.text()}`);
}
