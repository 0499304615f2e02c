import type { FastifyBaseLogger } from 'fastify';
import { isDigest, systemClock, UpstreamError, type Clock } from '@shoal/core';
import { AccessCache, type AccessGrant, type AccessKey } from './access-cache.js';
import { MAX_CREDENTIALS_PER_TAG, MAX_GRANT_MEMORY_ENTRIES, MAX_TAG_MEMORY_ENTRIES } from './config.js';
import type { ProxyContext } from './plugins/context.js';
import { TagMemory, type TagAnswer, type TagKey } from './tag-memory.js';
import { parseContentLength, type AccessResult } from './upstream.js';

/**
 * What one proxy remembers so it can keep answering while a registry is down:
 * the last good answer per tag (stale-if-error) and, per credential, the
 * digests the registry granted it (grant memory). Both are per proxy: a
 * credential granted on another node's proxy is unknown here.
 */
export interface OutageMemory {
  readonly tags: TagMemory;
  /** Grants kept for `grantMemoryMs` (the 60 s access cache serves while the registry answers). */
  readonly grants: AccessCache | undefined;
  readonly challenges: ChallengeMemory;
}

/** Longest `WWW-Authenticate` value remembered. Characters. */
const MAX_CHALLENGE_LENGTH = 2048;

/**
 * The last 401 challenge the registry gave an anonymous client, per
 * (registry, repository). containerd sends credentials only after a 401: when
 * the registry is down, replaying its challenge to an anonymous request lets
 * containerd come back with the credential the memories above may know. A
 * challenge reveals nothing the registry did not tell anyone who asked.
 * Bounded by `maxEntries` (oldest first) and `maxAgeMs`.
 */
export class ChallengeMemory {
  private readonly entries = new Map<string, { challenge: string; seenAt: number }>();

  constructor(
    private readonly init: { maxAgeMs: number; maxEntries: number },
    private readonly clock: Clock = systemClock,
  ) {}

  remember(registry: string, repository: string, challenge: string | undefined): void {
    if (this.init.maxAgeMs <= 0 || challenge === undefined || challenge === '' || challenge.length > MAX_CHALLENGE_LENGTH) return;
    const key = `${registry}\n${repository}`;
    this.entries.delete(key);
    this.entries.set(key, { challenge, seenAt: this.clock.now() });
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.init.maxEntries) break;
      this.entries.delete(oldest);
    }
  }

  recall(registry: string, repository: string): string | undefined {
    const key = `${registry}\n${repository}`;
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (this.clock.now() - entry.seenAt > this.init.maxAgeMs) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.challenge;
  }
}

// One memory per proxy app, created on first use from that app's config.
const memories = new WeakMap<ProxyContext, OutageMemory>();

export function outageMemory(ctx: ProxyContext): OutageMemory {
  let memory = memories.get(ctx);
  if (memory === undefined) {
    memory = {
      tags: new TagMemory({ maxAgeMs: ctx.config.staleIfErrorMs, maxEntries: MAX_TAG_MEMORY_ENTRIES, maxCredentialsPerTag: MAX_CREDENTIALS_PER_TAG }),
      grants: ctx.config.grantMemoryMs > 0 ? new AccessCache({ ttlMs: ctx.config.grantMemoryMs, maxEntries: MAX_GRANT_MEMORY_ENTRIES }) : undefined,
      // Worth replaying only while something could be served to the credential that comes back.
      challenges: new ChallengeMemory({ maxAgeMs: Math.max(ctx.config.staleIfErrorMs, ctx.config.grantMemoryMs), maxEntries: MAX_TAG_MEMORY_ENTRIES }),
    };
    memories.set(ctx, memory);
  }
  return memory;
}

/**
 * The registry gave no answer at all (connection refused, reset, timeout):
 * the registry client throws an UpstreamError without an upstream status then.
 * An UpstreamError *with* a status is a registry that answered something odd,
 * not an outage.
 */
export function isRegistryUnreachable(err: unknown): err is UpstreamError {
  return err instanceof UpstreamError && err.upstreamStatus === undefined;
}

/** A 5xx answer counts as an outage too (the registry client already retried it). */
export function isOutageStatus(statusCode: number): boolean {
  return statusCode >= 500 && statusCode <= 599;
}

/** Records a grant the registry just made (a HEAD or GET that succeeded). */
export function rememberGrant(ctx: ProxyContext, key: AccessKey, grant: AccessGrant): void {
  outageMemory(ctx).grants?.set(key, grant);
}

/**
 * The access check of `Upstream.checkAccess`, plus the grant memory: when the
 * registry is unreachable or answers 5xx, a grant this credential got for this
 * (registry, repository, digest) within `grantMemoryMs` stands in for the
 * check. Without one, the outage goes to the caller as before (thrown, or a
 * 5xx refusal), so containerd moves on.
 */
export async function checkAccessOrRemember(
  ctx: ProxyContext,
  log: FastifyBaseLogger,
  key: AccessKey,
  options: { accept?: string | undefined; signal?: AbortSignal | undefined } = {},
): Promise<AccessResult> {
  const memory = outageMemory(ctx);
  let result: AccessResult;
  try {
    result = await ctx.upstream.checkAccess(key, options);
  } catch (err) {
    if (!isRegistryUnreachable(err)) throw err;
    const remembered = recallGrant(memory, log, key, err.message) ?? replayChallenge(memory, key);
    if (remembered === undefined) throw err;
    return remembered;
  }
  if (result.ok) {
    // A grant from the 60 s cache is not a new word from the registry: its memory keeps its age.
    if (!result.cached) memory.grants?.set(key, result.grant);
    return result;
  }
  if (result.upstreamStatus === 401 && isAnonymous(key.authorization)) {
    memory.challenges.remember(key.registry, key.repository, result.headers['www-authenticate']);
  }
  if (isOutageStatus(result.upstreamStatus)) {
    return recallGrant(memory, log, key, `registry answered ${result.upstreamStatus}`) ?? replayChallenge(memory, key) ?? result;
  }
  return result;
}

function isAnonymous(authorization: string | undefined): boolean {
  return authorization === undefined || authorization === '';
}

/** During an outage, an anonymous client gets the registry's last challenge for the repository (see ChallengeMemory). */
function replayChallenge(memory: OutageMemory, key: AccessKey): AccessResult | undefined {
  if (!isAnonymous(key.authorization)) return undefined;
  const challenge = memory.challenges.recall(key.registry, key.repository);
  return challenge === undefined ? undefined : { ok: false, upstreamStatus: 401, headers: { 'www-authenticate': challenge } };
}

/** Records the challenge of a 401 the registry gave an anonymous request. */
export function rememberChallenge(ctx: ProxyContext, registry: string, repository: string, authorization: string | undefined, challenge: string | undefined): void {
  if (isAnonymous(authorization)) outageMemory(ctx).challenges.remember(registry, repository, challenge);
}

/** The remembered challenge for an anonymous request during an outage, if any. */
export function recallChallenge(ctx: ProxyContext, registry: string, repository: string, authorization: string | undefined): string | undefined {
  return isAnonymous(authorization) ? outageMemory(ctx).challenges.recall(registry, repository) : undefined;
}

function recallGrant(memory: OutageMemory, log: FastifyBaseLogger, key: AccessKey, cause: string): AccessResult | undefined {
  const remembered = memory.grants?.recall(key);
  if (remembered === undefined) return undefined;
  log.warn(
    { kind: key.kind, registry: key.registry, repository: key.repository, digest: key.digest, grantAgeSeconds: Math.floor(remembered.ageMs / 1000), cause },
    'registry unavailable; serving on a grant this credential got earlier',
  );
  return { ok: true, grant: remembered.grant, cached: true, rememberedAgeMs: remembered.ageMs };
}

/**
 * Records a 200 for a tag from the response headers (HEAD, or a GET whose
 * bytes were not kept). Needs a digest, a type and a length, as containerd does.
 */
export function rememberTagFromHeaders(ctx: ProxyContext, key: TagKey, authorization: string | undefined, headers: Readonly<Record<string, string>>): void {
  const digest = headers['docker-content-digest'];
  const contentType = headers['content-type'];
  const sizeBytes = parseContentLength(headers['content-length']);
  if (digest === undefined || !isDigest(digest) || contentType === undefined || sizeBytes === undefined) return;
  rememberTag(ctx, key, authorization, { digest, contentType, sizeBytes });
}

export function rememberTag(ctx: ProxyContext, key: TagKey, authorization: string | undefined, answer: TagAnswer): void {
  outageMemory(ctx).tags.remember(key, authorization, answer);
}
