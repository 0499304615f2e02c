import { pipeline, type Readable } from 'node:stream';
import { Pool } from 'undici';
import {
  API_PREFIX,
  audienceHost,
  ClusterAuth,
  HEADER,
  SwarmUnavailableError,
  type BlobProvider,
  type BlobRequest,
  type BlobSource,
  type BlobStream,
  type ByteRange,
  type Logger,
} from '@shoal/core';
import { ExactLength } from './streams.js';

/** Connections kept to the peer. */
export const DEFAULT_PEER_CONNECTIONS = 32;
/** Connect timeout to the peer (it is on the same node). Milliseconds. */
export const DEFAULT_PEER_CONNECT_TIMEOUT_MS = 2_000;
/**
 * Time the peer gets to answer with headers. The proxy's own first-byte
 * timeout is usually shorter and aborts first. Milliseconds.
 */
export const DEFAULT_PEER_HEADERS_TIMEOUT_MS = 30_000;
/** Longest silence inside a body from the peer. Milliseconds. */
export const DEFAULT_PEER_BODY_TIMEOUT_MS = 30_000;

export interface HttpBlobProviderInit {
  /** Base URL of the peer, e.g. `http://127.0.0.1:65002`. */
  peerUrl: string;
  /** The cluster's shared secret: requests are signed under it for the peer (the token itself is never sent). Ignored when `auth` is given. */
  token?: string | undefined;
  /** The cluster's keys (rotated by a token-file watcher). */
  auth?: ClusterAuth | undefined;
  /** @default 32 (DEFAULT_PEER_CONNECTIONS) */
  connections?: number;
  /** @default 2000 (DEFAULT_PEER_CONNECT_TIMEOUT_MS) */
  connectTimeoutMs?: number;
  /** @default 30000 (DEFAULT_PEER_HEADERS_TIMEOUT_MS) */
  headersTimeoutMs?: number;
  /** @default 30000 (DEFAULT_PEER_BODY_TIMEOUT_MS) */
  bodyTimeoutMs?: number;
}

/** Most bytes read from an unusable answer to keep its connection; more and it is closed. */
const DRAIN_LIMIT_BYTES = 64 * 1024;

const SOURCES: readonly BlobSource[] = ['local', 'peer', 'supernode', 'upstream'];

function parseSource(value: string | string[] | undefined): BlobSource {
  const text = Array.isArray(value) ? value[0] : value;
  return SOURCES.find((s) => s === text) ?? 'peer';
}

/**
 * The swarm as a peer running in another process: `GET
 * <peer>/api/v1/blobs/<digest>?registry=&repository=&size=` (Range honoured).
 * The peer verifies what it sends; here the length is checked so a short body
 * errors instead of ending. Any non-2xx answer or transport failure rejects
 * before a byte, so the proxy falls back to the registry.
 */
export class HttpBlobProvider implements BlobProvider {
  private readonly pool: Pool;
  private readonly basePath: string;
  private readonly auth: ClusterAuth;
  private readonly audience: string;
  private readonly log: Logger;

  constructor(components: { log: Logger }, init: HttpBlobProviderInit) {
    const url = new URL(init.peerUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`peerUrl must be http(s): ${init.peerUrl}`);
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.auth = init.auth ?? new ClusterAuth({}, { token: init.token });
    this.audience = audienceHost(url);
    this.log = components.log.child({ component: 'http-blob-provider' });
    this.pool = new Pool(url.origin, {
      connections: init.connections ?? DEFAULT_PEER_CONNECTIONS,
      connectTimeout: init.connectTimeoutMs ?? DEFAULT_PEER_CONNECT_TIMEOUT_MS,
      headersTimeout: init.headersTimeoutMs ?? DEFAULT_PEER_HEADERS_TIMEOUT_MS,
      bodyTimeout: init.bodyTimeoutMs ?? DEFAULT_PEER_BODY_TIMEOUT_MS,
    });
  }

  async openBlob(request: BlobRequest, range: ByteRange | undefined, options: { signal?: AbortSignal } = {}): Promise<BlobStream & { body: Readable }> {
    const query = new URLSearchParams({ registry: request.registry, repository: request.repository, size: String(request.sizeBytes) });
    const path = `${this.basePath}${API_PREFIX}/blobs/${request.digest}?${query.toString()}`;
    const headers: Record<string, string> = this.auth.sign('GET', path, { kind: 'peer', host: this.audience });
    if (request.registryAuthorization !== undefined) headers[HEADER.registryAuthorization] = request.registryAuthorization;
    if (range !== undefined) headers.range = `bytes=${range.start}-${range.end}`;

    let response: Awaited<ReturnType<Pool['request']>>;
    try {
      response = await this.pool.request({ method: 'GET', path, headers, signal: options.signal });
    } catch (err) {
      throw new SwarmUnavailableError(`peer unreachable for ${request.digest}: ${(err as Error).message}`, { cause: err });
    }
    const { statusCode } = response;
    const expected = range === undefined ? request.sizeBytes : range.end - range.start + 1;
    const problem = checkAnswer(statusCode, response.headers, range, request.sizeBytes, expected);
    if (problem !== undefined) {
      // Error answers are small: drain them so the connection can be reused.
      response.body.dump({ limit: DRAIN_LIMIT_BYTES }).catch(() => {});
      this.log.debug({ digest: request.digest, statusCode, problem }, 'peer cannot serve blob');
      throw new SwarmUnavailableError(`peer cannot serve ${request.digest}: ${problem}`);
    }
    const body = new ExactLength(expected);
    pipeline(response.body, body, (err) => {
      if (err !== undefined && err !== null) this.log.debug({ err, digest: request.digest }, 'peer body failed');
    });
    return { source: parseSource(response.headers[HEADER.source]), sizeBytes: request.sizeBytes, body };
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}

function checkAnswer(
  statusCode: number,
  headers: Record<string, string | string[] | undefined>,
  range: ByteRange | undefined,
  sizeBytes: number,
  expected: number,
): string | undefined {
  if (range === undefined && statusCode !== 200) return `answered ${statusCode}`;
  if (range !== undefined) {
    if (statusCode !== 206) return `answered ${statusCode} to a range request`;
    const contentRange = headers['content-range'];
    if (contentRange !== undefined && contentRange !== `bytes ${range.start}-${range.end}/${sizeBytes}`) return `answered range ${String(contentRange)}`;
  }
  const length = headers['content-length'];
  if (length !== undefined && length !== String(expected)) return `announced ${String(length)} bytes, expected ${expected}`;
  return undefined;
}
