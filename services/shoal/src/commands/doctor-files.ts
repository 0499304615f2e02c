/**
 * `shoal doctor`'s file checks: containerd's config.toml (is the CRI registry
 * `config_path` on, and does it name our certs dir?) and the hosts.toml files
 * in that dir (do they send pulls to this node's proxy?).
 *
 * Every rule below mirrors what containerd itself does, checked against
 * containerd 1.6.20 on these machines: it ignores a whole hosts.toml that has
 * a TOML error, an unknown capability or a non-string header (logging only
 * "failed to decode hosts.toml"); it reads a mirror name without a scheme as
 * https; and its CRI plugin refuses to load when legacy `mirrors` and
 * `config_path` are both set. Each of those is a "mirror config silently not
 * applied" that this file turns into a named failure.
 *
 * TOML is parsed by smol-toml (TOML 1.0, no dependencies) rather than by hand:
 * the verdict "parseable or not" is the point of these checks, and real
 * containerd configs use quoted and dotted keys, literal strings, inline
 * tables and multi-line arrays, exactly where a small hand-written parser
 * would disagree with containerd's.
 */
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { isRecord } from '@shoal/core';
import type { CheckResult } from './check-result.js';

/** containerd's config and any hosts.toml are small; anything larger is refused rather than read. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
/** Files an `imports` chain may pull in before doctor stops following it. */
const MAX_CONFIG_FILES = 64;
/** Registry directories examined under the certs dir (sorted by name; the rest are reported, not read). */
const MAX_HOST_DIRS = 256;

/** Where the CRI registry settings live, by containerd config version (1 and 2: containerd 1.x; 3: containerd 2.x). */
const CRI_REGISTRY_PLUGIN = { 1: 'cri', 2: 'io.containerd.grpc.v1.cri', 3: 'io.containerd.cri.v1.images' } as const;
type ConfigVersion = keyof typeof CRI_REGISTRY_PLUGIN;
const CONFIG_VERSIONS = [1, 2, 3] as const;

type Table = Record<string, unknown>;

/** A TOML table: a JSON-like object, and not one of smol-toml's date values. */
function isTable(value: unknown): value is Table {
  return isRecord(value) && !(value instanceof Date);
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

function quote(text: string): string {
  return JSON.stringify(text);
}

function registrySection(plugin: string): string {
  return `[plugins.${quote(plugin)}.registry]`;
}

type FileText = { ok: true; text: string } | { ok: false; missing: boolean; reason: string };

/** Reads a small text file, turning every way it can fail into a sentence. */
async function readSmallFile(path: string): Promise<FileText> {
  try {
    const info = await stat(path);
    if (info.isDirectory()) return { ok: false, missing: false, reason: `${path} is a directory, not a file` };
    if (info.size > MAX_CONFIG_BYTES) return { ok: false, missing: false, reason: `${path} is ${info.size} bytes, too large for a config file (limit ${MAX_CONFIG_BYTES})` };
    return { ok: true, text: await readFile(path, 'utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { ok: false, missing: true, reason: `${path} does not exist` };
    if (code === 'EACCES' || code === 'EPERM') return { ok: false, missing: false, reason: `cannot read ${path}: permission denied (run shoal doctor as root, like containerd)` };
    return { ok: false, missing: false, reason: `cannot read ${path}: ${(err as Error).message}` };
  }
}

type Parsed = { ok: true; table: Table } | { ok: false; error: string };

function parseTomlText(text: string): Parsed {
  try {
    return { ok: true, table: parseToml(text) };
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const what = (err.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
    return { ok: false, error: `line ${err.line}, column ${err.column}: ${what}` };
  }
}

/**
 * Absolute path (relative ones taken from `base`) with symlinks resolved where
 * the path exists, so `/etc/containerd/certs.d` matches a link to it.
 */
async function canonicalPath(path: string, base: string): Promise<string> {
  const absolute = resolve(base, path);
  try {
    return await realpath(absolute);
  } catch {
    return absolute;
  }
}

// ---------------------------------------------------------------------------
// containerd's config.toml

interface PluginSection {
  table: Table;
  file: string;
}

interface EffectiveConfig {
  files: string[];
  version: ConfigVersion;
  /** Plugin tables after imports: a later file replaces a plugin's whole table (containerd's mergeConfig). */
  plugins: Map<string, PluginSection>;
  disabledPlugins: string[];
  /** Imports doctor could not follow (containerd may still read them). */
  notes: string[];
}

type LoadOutcome = { ok: true; config: EffectiveConfig } | { ok: false; detail: string; fix: string };

const GLOB_CHARS = /[*?[]/;

/** Go's filepath.Match for one path element: `*`, `?` and `[...]` classes. */
function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) return /(?!)/; // Go reports ErrBadPattern; match nothing
      const body = pattern.slice(i + 1, end).replace(/^\^/, '!').replace(/\\/g, '\\\\');
      source += body.startsWith('!') ? `[^${body.slice(1)}]` : `[${body}]`;
      i = end;
    } else source += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/** containerd resolves `imports` relative to the importing file and expands globs (sorted, like Go's filepath.Glob). */
async function resolveImports(file: string, imports: readonly string[], notes: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const entry of imports) {
    const path = isAbsolute(entry) ? entry : join(dirname(file), entry);
    if (!GLOB_CHARS.test(path)) {
      out.push(path);
      continue;
    }
    if (GLOB_CHARS.test(dirname(path))) {
      notes.push(`import ${quote(entry)} has a pattern in a directory name; doctor did not follow it`);
      continue;
    }
    const re = globToRegExp(basename(path));
    let names: string[] = [];
    try {
      names = await readdir(dirname(path));
    } catch {
      // filepath.Glob ignores I/O errors: no match
    }
    out.push(...names.filter((n) => re.test(n)).sort().map((n) => join(dirname(path), n)));
  }
  return out;
}

/**
 * Loads config.toml and its `imports` the way containerd's LoadConfig does:
 * breadth first, each file once; a later file replaces a plugin's whole table
 * and appends to `disabled_plugins`.
 */
async function loadContainerdConfig(configFile: string): Promise<LoadOutcome> {
  const pending = [configFile];
  const seen = new Set<string>();
  const config: EffectiveConfig = { files: [], version: 1, plugins: new Map(), disabledPlugins: [], notes: [] };
  while (pending.length > 0) {
    const file = pending.shift() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    if (seen.size > MAX_CONFIG_FILES) {
      config.notes.push(`more than ${MAX_CONFIG_FILES} files imported; doctor stopped following imports`);
      break;
    }
    const isMain = file === configFile;
    const read = await readSmallFile(file);
    if (!read.ok) {
      if (isMain) {
        return {
          ok: false,
          detail: read.reason,
          fix: read.missing
            ? `pass the file containerd really uses (--containerd-config FILE; \`ps -o args= -C containerd\` shows its --config), or create it: containerd config default > ${configFile}, then set config_path`
            : `make ${configFile} readable to shoal doctor (or pass --containerd-config FILE)`,
        };
      }
      config.notes.push(`imported ${read.reason}`);
      continue;
    }
    const parsed = parseTomlText(read.text);
    if (!parsed.ok) {
      return {
        ok: false,
        detail: `${file} is not valid TOML (${parsed.error}): containerd will not start with it`,
        fix: `fix ${file} at ${parsed.error.split(':')[0] ?? 'that line'}, then restart containerd`,
      };
    }
    const table = parsed.table;
    if (isMain) {
      const version = table.version ?? 1;
      if (!CONFIG_VERSIONS.includes(version as ConfigVersion)) {
        return {
          ok: false,
          detail: `${file} says version = ${JSON.stringify(version)}; containerd knows versions 1 and 2 (containerd 1.x) and 3 (containerd 2.x)`,
          fix: `set version = 2 (containerd 1.6/1.7) or version = 3 (containerd 2.x) in ${file}`,
        };
      }
      config.version = version as ConfigVersion;
    }
    config.files.push(file);
    if (isTable(table.plugins)) {
      for (const [name, section] of Object.entries(table.plugins)) {
        if (isTable(section)) config.plugins.set(name, { table: section, file });
      }
    }
    if (isStringArray(table.disabled_plugins)) config.disabledPlugins.push(...table.disabled_plugins);
    if (table.imports !== undefined) {
      if (!isStringArray(table.imports)) return { ok: false, detail: `${file}: imports must be a list of file names`, fix: `fix imports in ${file}` };
      pending.push(...(await resolveImports(file, table.imports, config.notes)));
    }
  }
  return { ok: true, config };
}

interface RegistryTable {
  plugin: string;
  table: Table;
  file: string;
}

function registryTableOf(config: EffectiveConfig, plugin: string): RegistryTable | undefined {
  const section = config.plugins.get(plugin);
  if (section === undefined || !isTable(section.table.registry)) return undefined;
  return { plugin, table: section.table.registry, file: section.file };
}

/** Where config_path sits when it sits where this config's version does not read it. */
function misplacedConfigPath(config: EffectiveConfig): RegistryTable | undefined {
  for (const version of CONFIG_VERSIONS) {
    const plugin = CRI_REGISTRY_PLUGIN[version];
    if (plugin === CRI_REGISTRY_PLUGIN[config.version]) continue;
    const registry = registryTableOf(config, plugin);
    if (registry !== undefined && registry.table.config_path !== undefined) return registry;
  }
  return undefined;
}

function legacyRegistryEntries(registry: RegistryTable | undefined): { mirrors: string[]; tls: string[] } {
  if (registry === undefined) return { mirrors: [], tls: [] };
  const mirrors = isTable(registry.table.mirrors) ? Object.keys(registry.table.mirrors) : [];
  const configs = isTable(registry.table.configs) ? registry.table.configs : {};
  const tls = Object.entries(configs)
    .filter(([, c]) => isTable(c) && c.tls !== undefined)
    .map(([host]) => host);
  return { mirrors, tls };
}

/**
 * Checks containerd's config: readable and valid TOML (`containerd config`),
 * the CRI plugin not disabled (`CRI plugin`), the CRI registry `config_path`
 * set to `certsDir` (`config_path`), and no legacy registry.mirrors /
 * configs.*.tls next to it (`legacy mirrors`).
 */
export async function checkContainerdConfig(configFile: string, certsDir: string): Promise<CheckResult[]> {
  const loaded = await loadContainerdConfig(configFile);
  if (!loaded.ok) return [{ check: 'containerd config', ok: false, detail: loaded.detail, fix: loaded.fix }];
  const config = loaded.config;
  const plugin = CRI_REGISTRY_PLUGIN[config.version];
  const section = registrySection(plugin);
  const results: CheckResult[] = [];

  const imported = config.files.length > 1 ? `, with ${config.files.length - 1} imported file(s)` : '';
  results.push(
    config.notes.length === 0
      ? { check: 'containerd config', ok: true, detail: `${configFile} (version ${config.version}${imported})` }
      : { check: 'containerd config', ok: 'warn', detail: `${configFile} (version ${config.version}${imported}); ${config.notes.join('; ')}`, fix: 'check those imports by hand: a plugin section in an import replaces the whole section of the main file' },
  );

  const criIds = config.version === 1 ? ['cri'] : [CRI_REGISTRY_PLUGIN[2], CRI_REGISTRY_PLUGIN[3]];
  const disabled = config.disabledPlugins.filter((p) => criIds.includes(p));
  results.push(
    disabled.length === 0
      ? { check: 'CRI plugin', ok: true, detail: 'enabled' }
      : {
          check: 'CRI plugin',
          ok: 'warn',
          detail: `disabled_plugins lists ${disabled.join(', ')}: the kubelet cannot pull through this containerd; only \`ctr --hosts-dir\` reads hosts.toml`,
          fix: `remove ${disabled.map(quote).join(', ')} from disabled_plugins in ${configFile} if this is a Kubernetes node, then restart containerd`,
        },
  );

  const registry = registryTableOf(config, plugin);
  const rawPath = registry?.table.config_path;
  const setHow =
    registry === undefined
      ? `add to ${configFile}:\n${section}\n  config_path = ${quote(certsDir)}\nthen restart containerd once (edits to hosts.toml need no restart)`
      : `in the ${section} section of ${registry.file}, set config_path = ${quote(certsDir)},\nthen restart containerd once (edits to hosts.toml need no restart)`;
  let configPathSet = false;
  if (rawPath !== undefined && typeof rawPath !== 'string') {
    results.push({ check: 'config_path', ok: false, detail: `config_path under ${section} in ${registry?.file ?? configFile} is not a string`, fix: setHow });
  } else if (rawPath === undefined || rawPath === '') {
    const elsewhere = misplacedConfigPath(config);
    if (elsewhere === undefined) {
      results.push({ check: 'config_path', ok: false, detail: `not set under ${section}: containerd ignores every hosts.toml, so no pull goes through Shoal`, fix: setHow });
    } else if (config.version === 2 && elsewhere.plugin === CRI_REGISTRY_PLUGIN[3]) {
      results.push({
        check: 'config_path',
        ok: 'warn',
        detail: `set only under ${registrySection(elsewhere.plugin)} (containerd 2.x) in a version 2 config; containerd 1.6/1.7 read ${section} and ignore it`,
        fix: `on containerd 1.x, move it: ${section} config_path = ${quote(certsDir)}; on 2.x, set version = 3`,
      });
      configPathSet = true;
    } else {
      results.push({
        check: 'config_path',
        ok: false,
        detail: `set under ${registrySection(elsewhere.plugin)} in ${elsewhere.file}, which a version ${config.version} config does not read: containerd ignores it`,
        fix: `move it to ${section} config_path = ${quote(certsDir)}, then restart containerd`,
      });
    }
  } else {
    configPathSet = true;
    const wanted = await canonicalPath(certsDir, process.cwd());
    const dirs = rawPath.split(':').filter((d) => d !== '');
    // containerd runs from / (systemd): a relative config_path is relative to that.
    const canonical = await Promise.all(dirs.map((d) => canonicalPath(d, '/')));
    const where = `${section} in ${registry?.file ?? configFile}`;
    if (!canonical.includes(wanted)) {
      results.push({
        check: 'config_path',
        ok: false,
        detail: `config_path = ${quote(rawPath)} (${where}): containerd reads hosts.toml from there, not from ${certsDir}`,
        fix: `either check that directory (shoal doctor --certs-dir ${dirs[0] ?? rawPath}) and write it with \`shoal containerd-config --certs-dir ${dirs[0] ?? rawPath}\`, or set config_path = ${quote(certsDir)} and restart containerd`,
      });
    } else if (dirs.length > 1) {
      results.push({
        check: 'config_path',
        ok: 'warn',
        detail: `config_path = ${quote(rawPath)} (${where}) lists ${dirs.length} directories: containerd 1.x uses the first with a matching registry or _default directory; containerd 2.1+ takes one directory only, and a list silently disables mirrors there`,
        fix: `set config_path = ${quote(certsDir)} alone`,
      });
    } else {
      results.push({ check: 'config_path', ok: true, detail: `${quote(rawPath)} (${where})` });
    }
  }

  const legacy = legacyRegistryEntries(registry);
  const legacyText = [
    ...(legacy.mirrors.length > 0 ? [`registry.mirrors for ${legacy.mirrors.join(', ')}`] : []),
    ...(legacy.tls.length > 0 ? [`registry.configs.*.tls for ${legacy.tls.join(', ')}`] : []),
  ].join(' and ');
  if (legacyText === '') {
    results.push({ check: 'legacy mirrors', ok: true, detail: 'none (no registry.mirrors, no registry.configs.*.tls)' });
  } else if (configPathSet && rawPath !== undefined) {
    results.push({
      check: 'legacy mirrors',
      ok: false,
      detail: `${legacyText} next to config_path: containerd refuses to load its CRI plugin ("\`mirrors\` cannot be set when \`config_path\` is provided"), so the kubelet cannot pull at all`,
      fix: `delete those tables under ${section} in ${registry?.file ?? configFile} (hosts.toml replaces them; TLS settings go in <certs-dir>/<host>/hosts.toml), then restart containerd`,
    });
  } else {
    results.push({
      check: 'legacy mirrors',
      ok: 'warn',
      detail: `${legacyText} (deprecated): they do not send pulls to Shoal, and once config_path is set they stop the CRI plugin from loading`,
      fix: `delete those tables under ${section} when you set config_path`,
    });
  }
  return results;
}

// ---------------------------------------------------------------------------
// hosts.toml

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
