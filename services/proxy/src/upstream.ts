import type { Logger } from '@shoal/core';
import { UpstreamError } from '@shoal/core';
import type { RegistryClientApi, RegistryResponse } from '@shoal/registry-client';
import { AccessCache, type AccessGrant, type AccessKey } from './access-cache.js';

/** Response headers passed from the registry to containerd (lowercase). */
export const PASSTHROUGH_HEADERS = [
  'content-type',
  'docker-content-digest',
  'content-length',
  'etag',
  'www-authenticate',
  'docker-distribution-api-version',
] as const;

export function pickHeaders(headers: Readonly<Record<string, string>>, names: readonly string[] = PASSTHROUGH_HEADERS): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = headers[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

export type AccessResult =
  | {
      ok: true;
      grant: AccessGrant;
      cached: boolean;
      /** Set when the registry could not be asked and a remembered grant of this age stood in (see outage.ts). */
      rememberedAgeMs?: number;
    }
  | { ok: false; upstreamStatus: number; headers: Record<string, string> };

/** Discards a body we do not need, so its connection goes back to the pool. */
export function discard(response: RegistryResponse): void {
  response.body.resume();
  response.body.on('error', () => {});
}

/**
 * The registry as the proxy uses it: the injected client plus the short-lived
 * record of which credential may read which digest.
 */
export class Upstream {
  readonly registry: RegistryClientApi;
  readonly access: AccessCache;
  private readonly log: Logger;

  constructor(components: { log: Logger; registry: RegistryClientApi }, init: { accessCheckTtlMs: number; maxAccessCheckEntries: number }) {
    this.registry = components.registry;
    this.log = components.log;
    this.access = new AccessCache({ ttlMs: init.accessCheckTtlMs, maxEntries: init.maxAccessCheckEntries });
  }

  /**
   * May this Authorization (or none) read this digest in this repository? One
   * upstream HEAD, remembered for a short while when the answer is yes. A
   * refusal comes back as `ok: false` with the upstream status; an unreachable
   * registry throws UpstreamError.
   */
  async checkAccess(key: AccessKey, options: { accept?: string | undefined; signal?: AbortSignal | undefined } = {}): Promise<AccessResult> {
    const cached = this.access.get(key);
    if (cached !== undefined) return { ok: true, grant: cached, cached: true };
    const response =
      key.kind === 'blob'
        ? await this.registry.headBlob({
            registry: key.registry,
            repository: key.repository,
            digest: key.digest,
            authorization: key.authorization,
            signal: options.signal,
          })
        : await this.registry.request({
            registry: key.registry,
            path: `/v2/${key.repository}/manifests/${key.digest}`,
            method: 'HEAD',
            headers: options.accept === undefined ? {} : { accept: options.accept },
            authorization: key.authorization,
            signal: options.signal,
          });
    discard(response);
    const { statusCode, headers } = response;
    if (statusCode < 200 || statusCode > 299) {
      this.log.debug({ ...keyForLog(key), upstreamStatus: statusCode }, 'access refused upstream');
      return { ok: false, upstreamStatus: statusCode, headers: pickHeaders(headers, ['www-authenticate', 'docker-distribution-api-version']) };
    }
    const sizeBytes = parseContentLength(headers['content-length']);
    if (sizeBytes === undefined) {
      throw new UpstreamError(`registry ${key.registry} answered HEAD for ${key.digest} without a valid Content-Length`, { upstreamStatus: statusCode });
    }
    const announced = headers['docker-content-digest'];
    if (announced !== undefined && announced !== key.digest) {
      throw new UpstreamError(`registry ${key.registry} answered HEAD for ${key.digest} with digest ${announced}`, { upstreamStatus: statusCode });
    }
    const grant: AccessGrant = { sizeBytes, headers: pickHeaders(headers) };
    this.access.set(key, grant);
    return { ok: true, grant, cached: false };
  }

  /** Records that a request with this key just succeeded (a GET that returned the content). */
  grant(key: AccessKey, grant: AccessGrant): void {
    this.access.set(key, grant);
  }
}

function keyForLog(key: AccessKey): Record<string, string> {
  return { kind: key.kind, registry: key.registry, repository: key.repository, digest: key.digest };
}

export function parseContentLength(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,16}$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}
