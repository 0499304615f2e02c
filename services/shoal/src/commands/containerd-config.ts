import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DOCKER_HUB, parseRegistryHost } from '@shoal/core';

export interface ContainerdConfigOptions {
  certsDir: string;
  proxyUrl: string;
  registries: readonly string[];
  plainHttpHosts: readonly string[];
}

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
  const lines = ['# Written by `shoal containerd-config`. containerd re-reads it on every pull.'];
  if (server !== undefined) lines.push(`server = "${server}"`, '');
  lines.push(`[host."${proxyUrl}"]`, '  capabilities = ["pull", "resolve"]', '');
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

/** Writes `<certsDir>/<registry>/hosts.toml` per registry and `_default/hosts.toml`; returns the files written. */
export async function writeContainerdConfig(options: ContainerdConfigOptions): Promise<string[]> {
  const proxyUrl = new URL(options.proxyUrl).toString().replace(/\/$/, '');
  const written: string[] = [];
  const registries = new Set([...options.registries, ...options.plainHttpHosts]);
  for (const registry of registries) {
    parseRegistryHost(registry); // validates
    const dir = join(options.certsDir, hostsDirName(registry));
    await mkdir(dir, { recursive: true });
    const file = join(dir, 'hosts.toml');
    await writeAtomically(file, hostsToml(proxyUrl, serverUrl(registry, options.plainHttpHosts)));
    written.push(file);
  }
  const dir = join(options.certsDir, '_default');
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'hosts.toml');
  await writeAtomically(file, hostsToml(proxyUrl, undefined));
  written.push(file);
  return written;
}
