/**
 * `shoal doctor`: checks this node's wiring, check by check, and says what to
 * do about each thing that is wrong. The complaint it answers: "mirror config
 * silently not applied, so nothing goes P2P and nobody notices".
 *
 * Checks are plain functions returning results; `formatReport` prints them.
 * The file checks are in doctor-containerd-config.ts and doctor-hosts-toml.ts
 * (both read TOML through doctor-toml.ts); the
 * network checks (proxy up, a test fetch through the swarm) are here.
 */
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Agent, request, type Dispatcher } from 'undici';
import {
  ConfigError,
  DigestVerifier,
  HEADER,
  isPlatformText,
  ManifestInvalidError,
  ManifestUnsupportedError,
  parseImageReference,
  parsePlatform,
  PlatformUnknownError,
  readBounded,
  resolveImageManifest,
  type FetchedManifest,
  type ConfigOf,
  type FlagSpecs,
  type ImageReference,
} from '@shoal/core';
import { DEFAULT_PROXY_URL } from '../flags.js';
import { DoctorCheckError, DoctorFailedError } from '../errors.js';
import type { CheckResult } from './check-result.js';
import { checkContainerdConfig } from './doctor-containerd-config.js';
import { checkHostsToml } from './doctor-hosts-toml.js';

export type { CheckResult } from './check-result.js';

/** containerd's own defaults (Debian and upstream packages). */
export const DEFAULT_CONTAINERD_CONFIG = '/etc/containerd/config.toml';
export const DEFAULT_CERTS_DIR = '/etc/containerd/certs.d';

/** /healthz and /readyz answer at once when the proxy is up; ms. */
const PROBE_TIMEOUT_MS = 3_000;
/** The whole test fetch; above the proxy's default first-byte timeout (30 s), so a slow swarm shows as a fallback, not as our timeout; ms. */
const TEST_FETCH_TIMEOUT_MS = 60_000;
/** Manifests and service answers are small; a larger body is refused rather than buffered. */
const MAX_SMALL_BODY_BYTES = 4 * 1024 * 1024;


/** X-Shoal-Source values that mean the swarm served the blob (the fourth, `upstream`, is the proxy's fallback). */
const SWARM_SOURCES: readonly string[] = ['local', 'peer', 'supernode'];

function describeError(err: unknown, url: string, timeoutMs: number): string {
  const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code;
  const where = new URL(url).host;
  if (e.name === 'TimeoutError' || e.name === 'AbortError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return `no answer from ${where} within ${timeoutMs / 1000} s`;
  if (code === 'ECONNREFUSED') return `nothing listens at ${where} (connection refused)`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `cannot resolve ${new URL(url).hostname}`;
  return `${url}: ${e.message ?? String(err)}${code !== undefined ? ` (${code})` : ''}`;
}

function statusOf(text: string): string {
  try {
    const json = JSON.parse(text) as { status?: unknown };
    if (typeof json.status === 'string') return json.status;
  } catch {
    // not JSON: show the text
  }
  return text.trim().slice(0, 200) || '(empty body)';
}

async function readSmall(body: Dispatcher.ResponseData['body'], limit = MAX_SMALL_BODY_BYTES): Promise<string> {
  return (await readBounded(body, limit, () => new Error(`answer larger than ${limit} bytes`))).toString('utf8');
}

/**
 * Is the proxy up? `proxy alive` (GET /healthz → 200) and `proxy ready`
 * (GET /readyz → 200; otherwise what it says).
 */
export async function checkProxy(proxyUrl: string, options: { timeoutMs?: number } = {}): Promise<CheckResult[]> {
  const timeoutMs = options.timeoutMs ?? PROBE_TIMEOUT_MS;
  const base = proxyUrl.replace(/\/+$/, '');
  const results: CheckResult[] = [];
  const dispatcher = new Agent({ connections: 1 });
  try {
    for (const [check, path] of [['proxy alive', '/healthz'], ['proxy ready', '/readyz']] as const) {
      results.push(await probe(dispatcher, check, `${base}${path}`, timeoutMs, base));
      if (results.at(-1)?.ok === false) break; // not alive: readiness says nothing more
    }
  } finally {
    await dispatcher.close();
  }
  return results;
}

async function probe(dispatcher: Dispatcher, check: 'proxy alive' | 'proxy ready', url: string, timeoutMs: number, base: string): Promise<CheckResult> {
  const start = `start this node's agent (\`shoal node\`; in Kubernetes the shoal node pod on this node, with hostNetwork: true), or pass --proxy URL`;
  try {
    const res = await request(url, { dispatcher, signal: AbortSignal.timeout(timeoutMs), headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    const text = await readSmall(res.body, 64 * 1024);
    if (res.statusCode === 200) return { check, ok: true, detail: `GET ${url} → 200` };
    const detail = `GET ${url} → ${res.statusCode}: ${statusOf(text)}`;
    return check === 'proxy ready'
      ? { check, ok: false, detail, fix: "the proxy is starting or shutting down: wait a few seconds and run doctor again; if it stays so, read the node agent's log" }
      : { check, ok: false, detail, fix: `is ${base} a Shoal proxy? ${start}` };
  } catch (err) {
    return { check, ok: false, detail: describeError(err, url, timeoutMs), fix: start };
  }
}

function imageText(image: ImageReference): string {
  return `${image.registryName}/${image.repository}${image.tag !== undefined ? `:${image.tag}` : ''}${image.digest !== undefined ? `@${image.digest}` : ''}`;
}

function refusal(status: number, what: string, body: string, image: ImageReference): DoctorCheckError {
  const excerpt = body.trim().slice(0, 200);
  if (status === 401 || status === 403) {
    return new DoctorCheckError(`${what}: the registry answered ${status} (credentials needed); doctor fetches anonymously`, 'pass --image with a public image this cluster uses');
  }
  if (status === 404) return new DoctorCheckError(`${what}: not found (404) ${excerpt}`, `check the image reference; does ${image.registryName} have ${image.repository}?`);
  return new DoctorCheckError(
    `${what}: the proxy answered ${status} ${excerpt}`,
    `the proxy could not get it from ${image.registryName}: read the node agent's log; an HTTP-only registry needs --plain-http ${image.registryName} on \`shoal node\``,
  );
}

/** Fallback counts from the proxy's /metrics, e.g. "swarm_error=2"; best effort. */
async function fallbackCounts(base: string, dispatcher: Dispatcher): Promise<string> {
  try {
    const res = await request(`${base}/metrics`, { dispatcher, signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    const text = await readSmall(res.body);
    const counts = [...text.matchAll(/^shoal_proxy_fallbacks_total\{reason="([^"]*)"\} ([0-9.e+]+)$/gm)].map((m) => `${m[1] ?? '?'}=${m[2] ?? '?'}`);
    return counts.length === 0 ? '' : ` (shoal_proxy_fallbacks_total: ${counts.join(', ')})`;
  } catch {
    return '';
  }
}

/**
 * A test fetch through the proxy, as containerd makes it: the manifest (the
 * platform's, for an index) and then the config blob, with `?ns=<registry>`.
 * Passes when the blob's `X-Shoal-Source` is local, peer or supernode;
 * `upstream` means the proxy fell back to the registry, so the swarm is not
 * serving this node. Without an image, skipped with a warning.
 */
export async function checkTestFetch(proxyUrl: string, image: ImageReference | undefined, platform: string, options: { timeoutMs?: number } = {}): Promise<CheckResult> {
  const check = 'test fetch';
  if (image === undefined) {
    return {
      check,
      ok: 'warn',
      detail: 'skipped: no --image given, so nothing showed that a pull really goes through the swarm',
      fix: 'pass --image REF, a small image this cluster uses: its manifest and config blob are fetched through the proxy',
    };
  }
  const timeoutMs = options.timeoutMs ?? TEST_FETCH_TIMEOUT_MS;
  const base = proxyUrl.replace(/\/+$/, '');
  const ns = encodeURIComponent(image.registryName);
  const name = imageText(image);
  const dispatcher = new Agent({ connections: 2 });
  const signal = AbortSignal.timeout(timeoutMs);
  let url = base;
  try {
    const getManifest = async (reference: string, accept: string): Promise<FetchedManifest> => {
      url = `${base}/v2/${image.repository}/manifests/${reference}?ns=${ns}`;
      const res = await request(url, { dispatcher, signal, headers: { accept } });
      const body = await readBounded(res.body, MAX_SMALL_BODY_BYTES, () => new Error(`answer larger than ${MAX_SMALL_BODY_BYTES} bytes`));
      if (res.statusCode !== 200) throw refusal(res.statusCode, `manifest ${reference}`, body.toString('utf8'), image);
      const contentType = res.headers['content-type'];
      return { body, contentType: typeof contentType === 'string' ? contentType : undefined };
    };
    let config;
    try {
      ({ config } = (await resolveImageManifest(getManifest, image.digest ?? image.tag ?? 'latest', parsePlatform(platform), name)).manifest);
    } catch (err) {
      if (err instanceof PlatformUnknownError) {
        const has = err.available.length === 0 ? '' : ` (it has ${err.available.join(', ')})`;
        throw new DoctorCheckError(`${name} has no manifest for ${platform}${has}`, 'pass --platform OS/ARCH of an image this node can run');
      }
      if (err instanceof ManifestUnsupportedError || err instanceof ManifestInvalidError) {
        throw new DoctorCheckError(err.message, `pass --image with an ordinary container image; is ${base} a Shoal proxy?`);
      }
      throw err;
    }
    const digest = config.digest;
    const started = Date.now();
    url = `${base}/v2/${image.repository}/blobs/${digest}?ns=${ns}`;
    const res = await request(url, { dispatcher, signal, headers: { accept: `${config.mediaType ?? 'application/octet-stream'}, */*` } });
    if (res.statusCode !== 200) throw refusal(res.statusCode, `config blob ${digest}`, await readSmall(res.body), image);
    const source = String(res.headers[HEADER.source] ?? '');
    const verifier = new DigestVerifier(digest, config.sizeBytes);
    try {
      await pipeline(res.body, verifier, new Writable({ write: (_chunk, _enc, done) => done() }));
    } catch (err) {
      throw new DoctorCheckError(`config blob ${digest}: ${(err as Error).message}`, 'the proxy served wrong bytes: report it with the node agent\'s log');
    }
    const took = `${verifier.bytes} B in ${Date.now() - started} ms`;
    if (SWARM_SOURCES.includes(source)) {
      const note = source === 'local' ? ' (already cached on this node)' : '';
      return { check, ok: true, detail: `${name}: config blob ${digest.slice(0, 19)}… came from ${source}${note}, ${took}` };
    }
    if (source === 'upstream') {
      return {
        check,
        ok: false,
        detail: `${name}: config blob ${digest.slice(0, 19)}… came from upstream: the proxy fell back to the registry, so the swarm is not serving this node${await fallbackCounts(base, dispatcher)}`,
        fix: `read the node agent's log for "swarm could not serve the blob" (reason, error) and ${base}/metrics shoal_proxy_fallbacks_total{reason}; check that this node reaches the supernode (shoal status --supernode URL)`,
      };
    }
    return {
      check,
      ok: false,
      detail: `${name}: the blob answer has ${source === '' ? `no ${HEADER.source} header` : `${HEADER.source}: ${source}`}: ${base} does not look like a Shoal proxy`,
      fix: 'pass --proxy with the URL of this node\'s Shoal proxy (the one in hosts.toml)',
    };
  } catch (err) {
    if (err instanceof DoctorCheckError) return { check, ok: false, detail: err.message, fix: err.fix };
    return { check, ok: false, detail: `${name}: ${describeError(err, url, timeoutMs)}`, fix: `make sure the proxy at ${base} is up and reaches ${image.registryName}; read the node agent's log` };
  } finally {
    await dispatcher.close();
  }
}

export interface DoctorOptions {
  /** @default DEFAULT_CONTAINERD_CONFIG */
  containerdConfig: string;
  /** @default DEFAULT_CERTS_DIR */
  certsDir: string;
  /** @default DEFAULT_PROXY_URL */
  proxyUrl: string;
  /** Fetched through the proxy to show the swarm serves it; undefined skips that check. */
  image?: ImageReference | undefined;
  /** OS/ARCH[/VARIANT] picked from a multi-arch image. */
  platform: string;
  /** Limit on the test fetch; ms. @default 60000 */
  testFetchTimeoutMs?: number;
}

/** Every check, in the order an SRE would fix them: containerd, hosts.toml, proxy, swarm. */
export async function runDoctor(options: DoctorOptions): Promise<CheckResult[]> {
  const results = [
    ...(await checkContainerdConfig(options.containerdConfig, options.certsDir)),
    ...(await checkHostsToml({ certsDir: options.certsDir, proxyUrl: options.proxyUrl, registryName: options.image?.registryName })),
  ];
  const proxy = await checkProxy(options.proxyUrl);
  results.push(...proxy);
  if (proxy.some((r) => r.ok === false)) {
    results.push({ check: 'test fetch', ok: 'warn', detail: 'skipped: the proxy is not up' });
  } else {
    results.push(await checkTestFetch(options.proxyUrl, options.image, options.platform, { timeoutMs: options.testFetchTimeoutMs ?? TEST_FETCH_TIMEOUT_MS }));
  }
  return results;
}

const MARK = { pass: '✔', warn: '⚠', fail: '✘' } as const;

function markOf(result: CheckResult): string {
  return result.ok === true ? MARK.pass : result.ok === 'warn' ? MARK.warn : MARK.fail;
}

/** One line per check (✔/⚠/✘, name, detail), the fix under each one not passed, and a summary line. */
export function formatReport(results: readonly CheckResult[]): string {
  const width = Math.max(...results.map((r) => r.check.length), 10);
  const indent = ' '.repeat(width + 4);
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${markOf(r)} ${r.check.padEnd(width)}  ${r.detail}`);
    if (r.ok !== true && r.fix !== undefined) {
      const [first, ...rest] = r.fix.split('\n');
      lines.push(`${indent}fix: ${first ?? ''}`, ...rest.map((l) => `${indent}     ${l}`));
    }
  }
  const failed = results.filter((r) => r.ok === false).length;
  const warned = results.filter((r) => r.ok === 'warn').length;
  const passed = results.length - failed - warned;
  lines.push('', `${passed} ok, ${warned} warning(s), ${failed} failing: ${failed === 0 ? 'this node is wired for Shoal' : 'fix the ✘ lines above'}`);
  return `${lines.join('\n')}\n`;
}

/** The command's flags; the platform default comes from the caller (the CLI's own notion of this machine). */
export function doctorFlags(defaultPlatform: string) {
  return {
    containerdConfig: { kind: 'path', help: "containerd's config file", default: DEFAULT_CONTAINERD_CONFIG },
    certsDir: { kind: 'path', help: 'the directory config_path must name (hosts.toml per registry)', default: DEFAULT_CERTS_DIR },
    proxy: { kind: 'url', help: "the node's proxy, as hosts.toml names it", default: DEFAULT_PROXY_URL },
    image: { kind: 'string', help: 'a small image the cluster uses: its manifest and config blob are fetched through the proxy (unset: that check is skipped)' },
    platform: { kind: 'string', help: 'OS/ARCH[/VARIANT] for multi-arch images', default: defaultPlatform },
    json: { kind: 'boolean', help: 'print the results as JSON', default: false },
  } satisfies FlagSpecs;
}


/** The loaded `shoal doctor` flags. */
export type DoctorConfig = ConfigOf<ReturnType<typeof doctorFlags>>;

/** Validates the loaded flags (every problem at once, as ConfigError) into DoctorOptions. */
export function doctorOptions(c: DoctorConfig): DoctorOptions {
  const problems: string[] = [];
  const proxyUrl = c.proxy;
  const proxy = new URL(proxyUrl);
  if ((proxy.pathname !== '/' && proxy.pathname !== '') || proxy.search !== '' || proxy.hash !== '' || proxy.username !== '') {
    problems.push(`--proxy: expected scheme://host:port only, got ${JSON.stringify(proxyUrl)}`);
  }
  let image: ImageReference | undefined;
  if (c.image !== undefined) {
    try {
      image = parseImageReference(c.image);
    } catch (err) {
      problems.push(`--image: ${(err as Error).message}`);
    }
  }
  const platform = c.platform;
  if (!isPlatformText(platform)) problems.push(`--platform: expected OS/ARCH[/VARIANT] like linux/amd64, got ${JSON.stringify(platform)}`);
  if (problems.length > 0) throw new ConfigError(problems);
  return { containerdConfig: c.containerdConfig, certsDir: c.certsDir, proxyUrl: proxy.origin, image, platform };
}

/** `shoal doctor`: prints the report (or JSON), throws DoctorFailedError when a check failed. */
export async function runDoctorCommand(c: DoctorConfig, write: (text: string) => void = (t) => process.stdout.write(t)): Promise<void> {
  const options = doctorOptions(c);
  const results = await runDoctor(options);
  const failed = results.filter((r) => r.ok === false);
  if (c.json === true) {
    write(`${JSON.stringify({ ok: failed.length === 0, results }, null, 2)}\n`);
  } else {
    const image = options.image === undefined ? '' : `, image ${imageText(options.image)}`;
    write(`shoal doctor: containerd config ${options.containerdConfig}, certs dir ${options.certsDir}, proxy ${options.proxyUrl}${image}\n\n`);
    write(formatReport(results));
  }
  if (failed.length > 0) throw new DoctorFailedError(failed);
}
