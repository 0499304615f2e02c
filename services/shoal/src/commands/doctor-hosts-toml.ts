/**
 * `shoal doctor`'s check of the hosts.toml files under containerd's certs dir:
 * do they send pulls to this node's proxy?
 *
 * Every rule mirrors what containerd itself does, checked against containerd
 * 1.6.20: it ignores a whole hosts.toml that has a TOML error, an unknown
 * capability or a non-string header (logging only "failed to decode
 * hosts.toml"), and it reads a mirror name without a scheme as https. Each is
 * a "mirror config silently not applied" that this file turns into a named
 * failure.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { CheckResult } from './check-result.js';
import { isStringArray, isTable, parseTomlText, quote, readSmallFile, type Table } from './doctor-toml.js';

/** Registry directories examined under the certs dir (sorted by name; the rest are reported, not read). */
const MAX_HOST_DIRS = 256;

/** containerd's directory name for `host:port` is first tried as `host_port_` (remotes/docker/config hostDirectory). */
function hostDirectory(host: string): string {
  const colon = host.lastIndexOf(':');
  return colon > 0 ? `${host.slice(0, colon)}_${host.slice(colon + 1)}_` : host;
}

/** The directories containerd tries for a registry, in order; the first that exists is used. */
export function hostDirCandidates(registryName: string): string[] {
  const special = hostDirectory(registryName);
  return [...(special !== registryName ? [special] : []), registryName, '_default'];
}

/** The registry a directory under certs.d is for (the inverse of hostDirectory). */
function registryOfDir(dir: string): string {
  const m = /^(.*)_(\d+)_$/.exec(dir);
  return m === null ? dir : `${m[1] ?? ''}:${m[2] ?? ''}`;
}

/** How containerd reads a mirror or server name: no scheme means https (remotes/docker/config parseHostConfig). */
function mirrorUrl(name: string): URL | undefined {
  try {
    return new URL(name.startsWith('http') ? name : `https://${name}`);
  } catch {
    return undefined;
  }
}

function validateHostFields(where: string, entry: Table): string | undefined {
  const caps = entry.capabilities;
  if (caps !== undefined) {
    if (!isStringArray(caps)) return `${where}: capabilities must be a list of strings`;
    const unknown = caps.find((c) => !['pull', 'resolve', 'push'].includes(c.toLowerCase()));
    if (unknown !== undefined) return `${where}: unknown capability ${quote(unknown)} (pull, resolve, push)`;
  }
  if (entry.ca !== undefined && typeof entry.ca !== 'string' && !isStringArray(entry.ca)) return `${where}: ca must be a file name or a list of them`;
  if (entry.client !== undefined) {
    const ok =
      typeof entry.client === 'string' ||
      (Array.isArray(entry.client) && entry.client.every((c) => typeof c === 'string' || (isStringArray(c) && c.length === 2)));
    if (!ok) return `${where}: client must be a file name, a list of them, or a list of [cert, key] pairs`;
  }
  if (entry.header !== undefined) {
    if (!isTable(entry.header)) return `${where}: header must be a table`;
    const bad = Object.entries(entry.header).find(([, v]) => typeof v !== 'string' && !isStringArray(v));
    if (bad !== undefined) return `${where}: header ${quote(bad[0])} must be a string or a list of strings`;
  }
  if (entry.skip_verify !== undefined && typeof entry.skip_verify !== 'boolean') return `${where}: skip_verify must be true or false`;
  if (entry.override_path !== undefined && typeof entry.override_path !== 'boolean') return `${where}: override_path must be true or false`;
  return undefined;
}

export interface HostsFileVerdict {
  ok: boolean | 'warn';
  detail: string;
  /** Set when `ok` is not true. */
  fix?: string;
}

/**
 * Judges one hosts.toml's text: would containerd accept it, and does it send
 * pulls to `proxyUrl` (a `[host."<proxy>"]` entry with pull and resolve)?
 * `rewrite` is the command that writes a correct file in its place.
 */
export function judgeHostsToml(text: string, proxyUrl: string, rewrite: string): HostsFileVerdict {
  const parsed = parseTomlText(text);
  if (!parsed.ok) return { ok: false, detail: `not valid TOML (${parsed.error}): containerd ignores the whole file without a word`, fix: rewrite };
  const root = parsed.table;
  if (root.server !== undefined && typeof root.server !== 'string') return { ok: false, detail: 'server must be a string: containerd ignores the whole file', fix: rewrite };
  const topProblem = validateHostFields('top level', root);
  if (topProblem !== undefined) return { ok: false, detail: `${topProblem}: containerd ignores the whole file`, fix: rewrite };
  const hosts = root.host;
  if (hosts !== undefined && !isTable(hosts)) return { ok: false, detail: 'host must be a table of [host."<url>"] sections: containerd ignores the whole file', fix: rewrite };
  const entries = Object.entries(hosts ?? {});
  for (const [name, entry] of entries) {
    if (!isTable(entry)) return { ok: false, detail: `host.${quote(name)} is not a table: containerd ignores the whole file`, fix: rewrite };
    const problem = validateHostFields(`[host.${quote(name)}]`, entry);
    if (problem !== undefined) return { ok: false, detail: `${problem}: containerd ignores the whole file`, fix: rewrite };
  }

  const proxy = new URL(proxyUrl);
  const index = entries.findIndex(([name]) => mirrorUrl(name)?.origin === proxy.origin);
  if (index < 0) {
    const names = entries.map(([name]) => name);
    const noScheme = entries.find(([name]) => !name.startsWith('http') && mirrorUrl(name)?.host === proxy.host);
    const detail =
      noScheme !== undefined
        ? `[host.${quote(noScheme[0])}] has no scheme, so containerd talks https to it, not ${proxy.origin}`
        : names.length === 0
          ? `no [host."…"] mirror: every pull goes straight to ${typeof root.server === 'string' ? root.server : 'the registry'}`
          : `no [host.${quote(proxy.origin)}] entry (mirrors: ${names.join(', ')}): pulls do not go through this node's proxy`;
    return { ok: false, detail, fix: rewrite };
  }
  const [name, entry] = entries[index] as [string, Table];
  const url = mirrorUrl(name) as URL;
  const overridePath = entry.override_path === true;
  const path = url.pathname.replace(/\/+$/, '');
  if (overridePath ? path !== '/v2' : path !== '' && path !== '/v2') {
    return {
      ok: false,
      detail: `[host.${quote(name)}]${overridePath ? ' with override_path = true' : ''} sends requests under ${quote(overridePath ? path || '/' : `${path}/v2`)}; the proxy serves /v2/ only`,
      fix: rewrite,
    };
  }
  const caps = isStringArray(entry.capabilities) ? entry.capabilities.map((c) => c.toLowerCase()) : ['pull', 'resolve', 'push'];
  if (!caps.includes('pull')) return { ok: false, detail: `[host.${quote(name)}] lacks the pull capability: containerd fetches no blob through the proxy`, fix: rewrite };
  const server = typeof root.server === 'string' ? `, then ${root.server}` : '';
  const summary = `mirror ${name} (${caps.join(', ')})${server}`;
  const warnings: string[] = [];
  if (!caps.includes('resolve')) warnings.push('no resolve capability: tags are resolved at the registry directly (blobs still come through Shoal)');
  if (url.protocol === 'http:' && (entry.ca !== undefined || entry.client !== undefined || entry.skip_verify !== undefined)) {
    warnings.push('TLS settings (ca/client/skip_verify) on an http:// mirror make containerd try HTTPS first on every request');
  }
  if (index > 0) warnings.push(`tried only after ${entries.slice(0, index).map(([n]) => n).join(', ')}`);
  if (warnings.length > 0) return { ok: 'warn', detail: `${summary}; ${warnings.join('; ')}`, fix: rewrite };
  return { ok: true, detail: summary };
}

export interface HostsTomlOptions {
  certsDir: string;
  proxyUrl: string;
  /** The registry of the test image (as containerd names it: `docker.io`, `host:port`): also report which file containerd uses for it. */
  registryName?: string | undefined;
}

/**
 * Checks the hosts.toml files under `certsDir`: one result per registry
 * directory (`hosts.toml <dir>`), a warning when `_default` is missing, and,
 * given a registry, which file containerd picks for it (`hosts.toml for <registry>`).
 */
export async function checkHostsToml(options: HostsTomlOptions): Promise<CheckResult[]> {
  const { certsDir, proxyUrl } = options;
  const writeAll = `shoal containerd-config --certs-dir ${certsDir} --proxy ${proxyUrl}`;
  let info;
  try {
    info = await stat(certsDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const detail = code === 'ENOENT' || code === 'ENOTDIR' ? `${certsDir} does not exist: containerd finds no hosts.toml` : `cannot read ${certsDir}: ${(err as Error).message}`;
    return [{ check: 'certs dir', ok: false, detail, fix: writeAll }];
  }
  if (!info.isDirectory()) return [{ check: 'certs dir', ok: false, detail: `${certsDir} is not a directory`, fix: `remove it, then ${writeAll}` }];
  let names: string[];
  try {
    const entries = await readdir(certsDir, { withFileTypes: true });
    const dirs = await Promise.all(
      entries.map(async (e) => (e.isDirectory() || (e.isSymbolicLink() && (await stat(join(certsDir, e.name)).catch(() => undefined))?.isDirectory() === true) ? e.name : undefined)),
    );
    names = dirs.filter((n): n is string => n !== undefined).sort();
  } catch (err) {
    return [{ check: 'certs dir', ok: false, detail: `cannot list ${certsDir}: ${(err as Error).message}`, fix: 'run shoal doctor as root, like containerd' }];
  }

  const results: CheckResult[] = [];
  const verdicts = new Map<string, CheckResult>();
  /** Whether each directory's hosts.toml sends pulls to the proxy (warnings included). */
  const mirrored = new Map<string, boolean>();
  const examined = names.slice(0, MAX_HOST_DIRS);
  let files = 0;
  for (const dir of examined) {
    const registry = dir === '_default' ? undefined : registryOfDir(dir);
    const file = join(certsDir, dir, 'hosts.toml');
    const read = await readSmallFile(file);
    // A registry reached over plain HTTP must stay so in the rewritten file (`server = "http://…"`).
    const plainHttp = read.ok && /^\s*server\s*=\s*["']http:\/\//m.test(read.text);
    const rewrite = `${writeAll}${registry === undefined ? '' : ` ${plainHttp ? '--plain-http' : '--registry'} ${registry}`} (rewrites ${file})`;
    let result: CheckResult;
    if (!read.ok && read.missing) {
      result = {
        check: `hosts.toml ${dir}`,
        ok: 'warn',
        detail:
          registry === undefined
            ? `${join(certsDir, dir)}/ has no hosts.toml: registries without their own directory are pulled directly, not through Shoal`
            : `${join(certsDir, dir)}/ has no hosts.toml: containerd still picks this directory for ${registry} (certificates only, no _default), so ${registry} is pulled directly, not through Shoal`,
        fix: `${rewrite}, or remove the directory`,
      };
    } else if (!read.ok) {
      result = { check: `hosts.toml ${dir}`, ok: false, detail: read.reason, fix: 'run shoal doctor as root, like containerd' };
    } else {
      files++;
      const verdict = judgeHostsToml(read.text, proxyUrl, rewrite);
      result = { check: `hosts.toml ${dir}`, ok: verdict.ok, detail: `${file}: ${verdict.detail}`, ...(verdict.fix !== undefined ? { fix: verdict.fix } : {}) };
    }
    verdicts.set(dir, result);
    mirrored.set(dir, read.ok && result.ok !== false);
    results.push(result);
  }
  if (names.length > examined.length) {
    results.push({ check: 'hosts.toml', ok: 'warn', detail: `${names.length} directories under ${certsDir}; only the first ${MAX_HOST_DIRS} were checked` });
  }
  if (files === 0) {
    results.push({ check: 'hosts.toml', ok: false, detail: `no hosts.toml under ${certsDir}: containerd pulls every image straight from its registry`, fix: writeAll });
  } else if (!verdicts.has('_default')) {
    const through = examined.filter((d) => mirrored.get(d) === true);
    results.push({
      check: 'hosts.toml _default',
      ok: 'warn',
      detail: `no _default/hosts.toml: only ${through.map(registryOfDir).join(', ') || 'no registry'} can go through Shoal; other registries are pulled directly`,
      fix: writeAll,
    });
  }

  if (options.registryName !== undefined) {
    const registry = options.registryName;
    const chosen = hostDirCandidates(registry).find((d) => names.includes(d));
    const check = `hosts.toml for ${registry}`;
    const chosenResult = chosen === undefined ? undefined : verdicts.get(chosen);
    if (chosen === undefined) {
      results.push({ check, ok: false, detail: `none of ${hostDirCandidates(registry).join(', ')} exists under ${certsDir}: containerd pulls ${registry} directly`, fix: `${writeAll} --registry ${registry}` });
    } else if (chosenResult === undefined) {
      results.push({ check, ok: 'warn', detail: `containerd uses ${join(certsDir, chosen)} for ${registry}; doctor did not examine it` });
    } else if (mirrored.get(chosen) === true) {
      results.push({ check, ok: true, detail: `containerd uses ${join(certsDir, chosen, 'hosts.toml')}` });
    } else {
      results.push({
        check,
        ok: false,
        detail: `containerd uses ${join(certsDir, chosen)}/ for ${registry}, and it does not send pulls to the proxy (see "hosts.toml ${chosen}")`,
        fix: chosenResult.fix ?? `${writeAll} --registry ${registry}`,
      });
    }
  }
  return results;
}
