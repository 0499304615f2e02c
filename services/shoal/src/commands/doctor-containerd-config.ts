/**
 * `shoal doctor`'s check of containerd's config.toml: is the CRI registry
 * `config_path` on, and does it name the certs dir Shoal writes? The file and
 * its `imports` are read the way containerd reads them.
 *
 * Every rule mirrors what containerd itself does, checked against containerd
 * 1.6.20: its CRI plugin refuses to load when legacy `mirrors` and
 * `config_path` are both set, and a `config_path` in the section another
 * config version reads is ignored. Each is a "mirror config silently not
 * applied" that this file turns into a named failure.
 */
import { readdir } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import type { CheckResult } from './check-result.js';
import { canonicalPath, isStringArray, isTable, parseTomlText, quote, readSmallFile, type Table } from './doctor-toml.js';

/** Files an `imports` chain may pull in before doctor stops following it. */
const MAX_CONFIG_FILES = 64;

/** Where the CRI registry settings live, by containerd config version (1 and 2: containerd 1.x; 3: containerd 2.x). */
const CRI_REGISTRY_PLUGIN = { 1: 'cri', 2: 'io.containerd.grpc.v1.cri', 3: 'io.containerd.cri.v1.images' } as const;
type ConfigVersion = keyof typeof CRI_REGISTRY_PLUGIN;
const CONFIG_VERSIONS = [1, 2, 3] as const;

function registrySection(plugin: string): string {
  return `[plugins.${quote(plugin)}.registry]`;
}

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
