import { request } from 'undici';
import { API_PREFIX, HEADER, parseWire, readBounded, SupernodeStatusSchema, type FlagSpecs, type SupernodeStatus } from '@shoal/core';
import type { CommandSpec } from '../command.js';
import { StatusError } from '../errors.js';
import { DEFAULT_SUPERNODE_URL, readToken, tokenFileFlag } from '../flags.js';

/** A status answer lists every live peer; larger answers are refused rather than buffered. Bytes: 16 MiB. */
export const MAX_STATUS_BYTES = 16 * 1024 * 1024;
/** Characters of a refused or malformed answer shown in an error. */
const MAX_SHOWN_ANSWER_CHARS = 300;
const MIB = 1024 * 1024;

export interface StatusOptions {
  supernodeUrl: string;
  /** The cluster token, sent as the operator's header (the status API requires it). */
  token: string | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Asks a supernode for `GET /api/v1/status` and checks the answer against the
 * status wire schema. Rejects with a StatusError when the supernode cannot be
 * reached, refuses, or answers something that is not a status.
 */
export async function fetchSupernodeStatus(options: StatusOptions): Promise<SupernodeStatus> {
  const base = options.supernodeUrl.replace(/\/+$/, '');
  let text: string;
  let statusCode: number;
  try {
    const res = await request(`${base}${API_PREFIX}/status`, {
      headers: options.token === undefined ? {} : { [HEADER.token]: options.token },
      signal: options.signal ?? null,
    });
    statusCode = res.statusCode;
    text = (await readBounded(res.body, MAX_STATUS_BYTES, () => new StatusError(`supernode ${base}: status larger than ${MAX_STATUS_BYTES} bytes`))).toString('utf8');
  } catch (err) {
    if (err instanceof StatusError || options.signal?.aborted === true) throw err;
    throw new StatusError(`cannot reach supernode ${base}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (statusCode !== 200) throw new StatusError(`supernode ${base} answered ${statusCode}: ${text.slice(0, MAX_SHOWN_ANSWER_CHARS)}`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new StatusError(`supernode ${base} answered with something that is not JSON: ${JSON.stringify(text.slice(0, MAX_SHOWN_ANSWER_CHARS))}`, { cause: err });
  }
  try {
    return parseWire(SupernodeStatusSchema, json, 'supernode status');
  } catch (err) {
    throw new StatusError(`supernode ${base} answered with a malformed status (is it a Shoal supernode of this version?): ${(err as Error).message}`, { cause: err });
  }
}

/** The status as `shoal status` prints it: one summary line, then one line per peer. */
export function formatStatus(supernodeUrl: string, status: SupernodeStatus): string {
  const { blobs } = status;
  const lines = [`supernode ${supernodeUrl}: ${status.peers.length} peer(s), ${blobs.count} blob(s) cached (${(blobs.bytes / MIB).toFixed(1)} MiB), ${blobs.inflight} downloading`];
  for (const p of status.peers) lines.push(`  ${p.peerId}  ${p.advertiseUrl}${p.nodeName === undefined ? '' : `  node ${p.nodeName}`}`);
  return `${lines.join('\n')}\n`;
}

export const statusFlags = {
  supernode: { kind: 'url', help: 'supernode URL', default: DEFAULT_SUPERNODE_URL },
  tokenFile: tokenFileFlag,
} satisfies FlagSpecs;

export const statusCommand: CommandSpec<typeof statusFlags> = {
  summary: 'the swarm at a glance',
  flags: statusFlags,
  async run(c) {
    const token = await readToken(c.tokenFile);
    const status = await fetchSupernodeStatus({ supernodeUrl: c.supernode, token });
    process.stdout.write(formatStatus(c.supernode, status));
  },
};
