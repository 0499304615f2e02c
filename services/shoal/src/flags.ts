import { readFile } from 'node:fs/promises';
import { ConfigError, isNodeName, MAX_NODE_NAME_LENGTH, type FlagSpec } from '@shoal/core';

/** Default listen addresses and locations (DESIGN.md, the command-line contract). */
export const DEFAULT_SUPERNODE_LISTEN = '0.0.0.0:8002';
export const DEFAULT_PROXY_LISTEN = '127.0.0.1:65001';
export const DEFAULT_PEER_LISTEN = '0.0.0.0:65002';
export const DEFAULT_SUPERNODE_DATA = './.shoal/supernode';
export const DEFAULT_NODE_DATA = './.shoal/node';
export const DEFAULT_CONTAINERD_SOCKET = '/run/containerd/containerd.sock';
export const DEFAULT_PROXY_URL = 'http://127.0.0.1:65001';
export const DEFAULT_SUPERNODE_URL = 'http://127.0.0.1:8002';

export const tokenFileFlag = { kind: 'path', help: "file holding the cluster's shared secret" } satisfies FlagSpec<'path'>;
export const plainHttpFlag = { kind: 'hostPortList', help: 'registries reached over plain HTTP (HOST:PORT, repeatable)', default: [] } satisfies FlagSpec<'hostPortList'>;
export const logLevelFlag = { kind: 'string', help: 'fatal|error|warn|info|debug|trace|silent', default: 'info' } satisfies FlagSpec<'string'>;

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

export function checkLogLevel(level: string): string {
  if (!LOG_LEVELS.has(level)) throw new ConfigError([`--log-level: unknown level ${JSON.stringify(level)}`]);
  return level;
}

/** Reads the cluster token; an empty or unreadable file is a configuration error, not an open cluster. */
export async function readToken(path: string | undefined): Promise<string | undefined> {
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`--token-file: cannot read ${path}: ${(err as Error).message}`]);
  }
  const token = text.trim();
  if (token.length < 16) throw new ConfigError([`--token-file: ${path} holds ${token.length} characters; use at least 16 (e.g. openssl rand -hex 32)`]);
  return token;
}

export const nodeNameFlag = {
  kind: 'string',
  help: 'the Kubernetes node this peer runs on (spec.nodeName), which `shoal preheat --nodes` selects by (default: this host name, lowercased)',
} satisfies FlagSpec<'string'>;

/**
 * The node name a peer registers with: `--node-name` / SHOAL_NODE_NAME, else
 * the host name in lowercase (as kubelet names a node). A name given must be
 * what Kubernetes accepts as a node name (a lowercase RFC 1123 subdomain of at
 * most 253 characters), else it is a ConfigError. A host name that is not one
 * (an underscore, say) gives undefined: the peer then registers without a node
 * name and `shoal preheat --nodes` knows it by its peer id, rather than a
 * laptop's `shoal node` refusing to start.
 */
export function resolveNodeName(given: string | undefined, host: string): string | undefined {
  if (given === undefined) {
    const name = host.toLowerCase();
    return isNodeName(name) ? name : undefined;
  }
  if (!isNodeName(given)) {
    throw new ConfigError([
      `--node-name: expected a Kubernetes node name (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most ${MAX_NODE_NAME_LENGTH} characters), got ${JSON.stringify(given.slice(0, 300))}`,
    ]);
  }
  return given;
}
