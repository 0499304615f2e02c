import { mkdir, readdir, readFile, rename, rmdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseToml, stringify as stringifyToml, TomlError } from 'smol-toml';
import { DOCKER_HUB, parseRegistryHost } from '@shoal/core';

export interface ContainerdConfigOptions {
  certsDir: string;
  proxyUrl: string;
  registries: readonly string[];
  plainHttpHosts: readonly string[];
}

/** The first line of every hosts.toml this command writes: how `--restore` (and a rerun) tells its files from the user's. */
export const SHOAL_MARK = '# Written by `shoal containerd-config`.';
/** The user's own hosts.toml, kept beside the merged one until `--restore` puts it back. */
export const BACKUP_NAME = 'hosts.toml.shoal-backup';
/** A hosts.toml larger than this is no containerd config: refuse it rather than read it whole. */
const MAX_HOSTS_TOML_BYTES = 1024 * 1024;

/** The upstream containerd falls back to (`server`): always tried after the mirror. */
export function serverUrl(registryName: string, plainHttpHosts: readonly string[]): string {
  const host = parseRegistryHost(registryName);
  return `${plainHttpHosts.includes(registryName) || plainHttpHosts.includes(host) ? 'http' : 'https'}://${host}`;
}

/**
 * hosts.toml for one registry: the node's proxy as a pull/resolve mirror, the
 * registry itself as `server`. No TLS settings on the loopback mirror
 * (containerd would try HTTPS first), no `dial_timeout` (unknown before
 * containerd 2.1: 1.6 ignores it, so it would promise a timeout it does not give).
 */
export function hostsToml(proxyUrl: string, server: string | undefined): string {
  return mergedHostsToml(proxyUrl, server, undefined);
}

/**
 * The merged hosts.toml: the proxy first, then the user's own mirrors in their
 * order with every setting they had (`ca`, `client`, `skip_verify`, `header`,
 * `override_path`...), then `server`. The user's `server` and its settings win
 * over the default one. containerd walks `[host]` entries in file order, so when
 * the proxy fails it falls back to the user's mirror, then to `server`.
 */
export function mergedHostsToml(proxyUrl: string, defaultServer: string | undefined, user: Record<string, unknown> | undefined): string {
  const { host: userHosts, server: userServer, ...userTop } = user ?? {};
  const hosts: Record<string, unknown> = {};
  if (typeof userHosts === 'object' && userHosts !== null) {
    for (const [url, settings] of Object.entries(userHosts)) if (url.replace(/\/$/, '') !== proxyUrl) hosts[url] = settings;
  }
  const server = typeof userServer === 'string' ? userServer : defaultServer;
  const origin = user === undefined ? 'containerd re-reads it on every pull.' : `The node's own settings were kept (after the proxy); the original is ${BACKUP_NAME}.`;
  const lines = [`${SHOAL_MARK} ${origin}`];
  const top = stringifyToml({ ...(server === undefined ? {} : { server }), ...userTop }).trim();
  if (top !== '') lines.push(top, '');
  // The proxy's table first: containerd tries [host] entries in file order.
  lines.push(`[host."${proxyUrl}"]`, '  capabilities = ["pull", "resolve"]', '');
  if (Object.keys(hosts).length > 0) lines.push(stringifyToml({ host: hosts }).trim(), '');
  return lines.join('\n');
}

/** containerd looks up `host:port` under that exact name first (pkg/remotes/docker/config hostDirectory). */
export function hostsDirName(registryName: string): string {
  return registryName === DOCKER_HUB ? 'docker.io' : registryName;
}

async function writeAtomically(file: string, text: string): Promise<void> {
  const temp = `${file}.tmp-${process.pid}`;
  await writeFile(temp, text);
  await rename(temp, file);
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    const text = await readFile(file, 'utf8');
    if (Buffer.byteLength(text) > MAX_HOSTS_TOML_BYTES) throw new Error(`${file}: larger than ${MAX_HOSTS_TOML_BYTES} bytes: no containerd hosts.toml`);
    return text;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The node's hosts.toml parsed, or undefined (with a warning) when containerd could not read it either. */
function tryParse(file: string, text: string, warnings: string[]): Record<string, unknown> | undefined {
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (err) {
    const reason = err instanceof TomlError ? (err.message.split('\n')[0] ?? '') : String(err);
    warnings.push(`${file} is not valid TOML (${reason}): containerd ignores it; it is kept as ${BACKUP_NAME} and the proxy is written alone`);
    return undefined;
  }
}

export interface WrittenHostsToml {
  file: string;
  /** `created`: no file was there; `merged`: the node's own file was kept after the proxy (backup beside it); `replaced`: an earlier run's file was rewritten. */
  action: 'created' | 'merged' | 'replaced';
}

export interface ContainerdConfigResult {
  written: WrittenHostsToml[];
  /** Files of the node's that are not valid TOML (containerd ignores them too): kept as the backup, the proxy written alone. */
  warnings: string[];
}

/** Registry directories already in certs.d with a hosts.toml (the node's own mirrors), besides `_default`. */
async function existingRegistryDirs(certsDir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(certsDir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const dirs: string[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name === '_default') continue;
    const names = await readdir(join(certsDir, entry.name)).catch(() => [] as string[]);
    if (names.includes('hosts.toml') || names.includes(BACKUP_NAME)) dirs.push(entry.name);
  }
  return dirs.sort();
}

/**
 * Writes `<certsDir>/<registry>/hosts.toml` for every registry asked for, for
 * every registry that already has one (so the node's own mirrors gain the proxy
 * in front), and `_default/hosts.toml`. An existing file of the node's is kept:
 * copied to `hosts.toml.shoal-backup` once, and merged after the proxy
 * (`mergedHostsToml`). Rerunning merges from the backup again, so it is
 * idempotent. `restoreContainerdConfig` undoes it.
 */
export async function configureContainerd(options: ContainerdConfigOptions): Promise<ContainerdConfigResult> {
  const proxyUrl = new URL(options.proxyUrl).toString().replace(/\/$/, '');
  const result: ContainerdConfigResult = { written: [], warnings: [] };
  const wanted = new Map<string, string | undefined>();
  for (const registry of [...options.registries, ...options.plainHttpHosts]) {
    parseRegistryHost(registry); // validates
    wanted.set(hostsDirName(registry), serverUrl(registry, options.plainHttpHosts));
  }
  for (const dir of await existingRegistryDirs(options.certsDir)) {
    if (wanted.has(dir)) continue;
    let server: string | undefined;
    try {
      server = serverUrl(dir.replace(/_$/, '').replace(/_(\d+)$/, ':$1'), options.plainHttpHosts);
    } catch {
      server = undefined; // not a registry name: the node's file keeps its own server, or none
    }
    wanted.set(dir, server);
  }
  wanted.set('_default', undefined);
  for (const [name, server] of wanted) {
    const dir = join(options.certsDir, name);
    const file = join(dir, 'hosts.toml');
    const backup = join(dir, BACKUP_NAME);
    const current = await readIfExists(file);
    const ours = current?.startsWith(SHOAL_MARK) === true;
    await mkdir(dir, { recursive: true });
    if (current !== undefined && !ours) {
      // The node's own file: back it up byte for byte. One that is not valid TOML
      // (containerd ignores it) does not replace a good backup from an earlier run.
      const valid = tryParse(file, current, result.warnings) !== undefined;
      if (valid || (await readIfExists(backup)) === undefined) await writeAtomically(backup, current);
    }
    const userText = await readIfExists(backup);
    const user = userText === undefined ? undefined : tryParse(backup, userText, current !== undefined && !ours ? [] : result.warnings);
    await writeAtomically(file, mergedHostsToml(proxyUrl, server, user));
    result.written.push({ file, action: user !== undefined ? 'merged' : ours ? 'replaced' : 'created' });
  }
  return result;
}

/** Writes the hosts.toml files (see `configureContainerd`); returns the files written. */
export async function writeContainerdConfig(options: ContainerdConfigOptions): Promise<string[]> {
  return (await configureContainerd(options)).written.map((w) => w.file);
}

export interface RestoredHostsToml {
  file: string;
  /** `restored`: the node's own file is back; `removed`: the file this command had created is gone. */
  action: 'restored' | 'removed';
}

/**
 * Undoes `configureContainerd` (the chart's post-delete hook runs it): every
 * hosts.toml it wrote is replaced by the node's backup, or removed when the
 * node had none (with its directory, when that is left empty). Files the node
 * wrote itself are never touched.
 */
export async function restoreContainerdConfig(certsDir: string): Promise<RestoredHostsToml[]> {
  const done: RestoredHostsToml[] = [];
  const dirs = [...(await existingRegistryDirs(certsDir)), '_default'];
  for (const name of dirs) {
    const dir = join(certsDir, name);
    const file = join(dir, 'hosts.toml');
    const backup = join(dir, BACKUP_NAME);
    const current = await readIfExists(file).catch(() => undefined);
    const hasBackup = (await readIfExists(backup).catch(() => undefined)) !== undefined;
    if (hasBackup && (current === undefined || current.startsWith(SHOAL_MARK))) {
      await rename(backup, file);
      done.push({ file, action: 'restored' });
    } else if (current?.startsWith(SHOAL_MARK) === true) {
      await unlink(file);
      await rmdir(dir).catch(() => undefined); // only when empty
      done.push({ file, action: 'removed' });
    }
  }
  return done;
}
