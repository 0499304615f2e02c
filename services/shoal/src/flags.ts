import { readFile } from 'node:fs/promises';
import { ConfigError, DEFAULT_TOKEN_GRACE_MS, isNodeName, MAX_NODE_NAME_LENGTH, parseTokenText, splitHostPort, type FlagSpec, type Logger } from '@shoal/core';

/**
 * Default listen addresses and locations (DESIGN.md, the command-line contract).
 * The supernode and the peer listen on every interface only when the cluster has
 * a token; without one (a laptop) they stay on loopback unless told otherwise.
 */
export const DEFAULT_SUPERNODE_LISTEN = '0.0.0.0:8002';
export const DEFAULT_SUPERNODE_LISTEN_OPEN = '127.0.0.1:8002';
export const DEFAULT_PROXY_LISTEN = '127.0.0.1:65001';
export const DEFAULT_PEER_LISTEN = '0.0.0.0:65002';
export const DEFAULT_PEER_LISTEN_OPEN = '127.0.0.1:65002';
export const DEFAULT_SUPERNODE_DATA = './.shoal/supernode';
export const DEFAULT_NODE_DATA = './.shoal/node';
export const DEFAULT_CONTAINERD_SOCKET = '/run/containerd/containerd.sock';
export const DEFAULT_PROXY_URL = 'http://127.0.0.1:65001';
export const DEFAULT_SUPERNODE_URL = 'http://127.0.0.1:8002';

export const tokenFileFlag = { kind: 'path', help: "file holding the cluster's shared secret: one token a line, up to 3, the first signs and every one is accepted (re-read when it changes, e.g. a rotated Kubernetes Secret)" } satisfies FlagSpec<'path'>;
export const tokenGraceSecFlag = {
  kind: 'integer',
  help: "after the token file's first token changes, how long the previous one still signs (the new one is accepted at once) — a token that leaves the file is accepted for twice this; every process must read the new file within it",
  default: DEFAULT_TOKEN_GRACE_MS / 1000,
  min: 1,
  max: 86_400,
} satisfies FlagSpec<'integer'>;

/** Whether a listen address's host is loopback (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * A supernode's or peer's listen address: the one given, else every interface
 * when the cluster has a token and loopback when it runs open. An open cluster
 * told to listen beyond loopback does so, with a loud warning: anyone who can
 * reach the port can read every cached blob and join the swarm.
 */
export function resolveListen(given: string | undefined, token: string | undefined, defaults: { withToken: string; open: string }, flag: string, log: Logger): string {
  if (given === undefined) return token === undefined ? defaults.open : defaults.withToken;
  if (token === undefined && !isLoopbackHost(splitHostPort(given).host)) {
    log.warn(
      { flag, listen: given },
      `${flag} ${given} WITHOUT A CLUSTER TOKEN: this port is OPEN beyond this machine — anyone who can reach it can read every cached blob (private ones too) and join the swarm. Set --token-file, or listen on 127.0.0.1.`,
    );
  }
  return given;
}
export const plainHttpFlag = { kind: 'hostPortList', help: 'registries reached over plain HTTP (HOST:PORT, repeatable)', default: [] } satisfies FlagSpec<'hostPortList'>;
export const logLevelFlag = { kind: 'string', help: 'fatal|error|warn|info|debug|trace|silent', default: 'info' } satisfies FlagSpec<'string'>;

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

export function checkLogLevel(level: string): string {
  if (!LOG_LEVELS.has(level)) throw new ConfigError([`--log-level: unknown level ${JSON.stringify(level)}`]);
  return level;
}

/**
 * Reads the cluster's tokens (one a line, the first signs); an empty, unreadable
 * or malformed file is a configuration error, not an open cluster.
 */
export async function readTokens(path: string | undefined): Promise<[string, ...string[]] | undefined> {
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`--token-file: cannot read ${path}: ${(err as Error).message}`]);
  }
  const parsed = parseTokenText(text);
  if ('problem' in parsed) throw new ConfigError([`--token-file: ${path} ${parsed.problem}`]);
  return parsed.tokens;
}

/** The token an operator's command sends in `x-shoal-token`: the file's first (the one the cluster signs with, or soon will). */
export async function readToken(path: string | undefined): Promise<string | undefined> {
  return (await readTokens(path))?.[0];
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
