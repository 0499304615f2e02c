import type { FastifyBaseLogger } from 'fastify';
import { isDigest, UpstreamError } from '@shoal/core';
import type { AccessGrant, AccessKey } from './access-cache.js';
import type { OutageMemory } from './outage-memory.js';
import type { ProxyContext } from './plugins/context.js';
import type { TagAnswer, TagKey } from './tag-memory.js';

export { ChallengeMemory, createOutageMemory, type OutageMemory } from './outage-memory.js';
import { parseContentLength, type AccessResult } from './upstream.js';

/** The memory of this proxy app (the `shoalProxy` decoration's `outage`). */
export function outageMemory(ctx: ProxyContext): OutageMemory {
  return ctx.outage;
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

/**
 * Records a grant the registry just made (a GET that succeeded, or a manifest
 * that named the blob): in the access cache, so the next request needs no HEAD,
 * and in the outage memory, so it can stand in while the registry is away.
 */
export function rememberGrant(ctx: ProxyContext, key: AccessKey, grant: AccessGrant): void {
  ctx.upstream.grant(key, grant);
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
