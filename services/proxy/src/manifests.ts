import { pipeline } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { digestOf, HEADER, isDigest, type Digest } from '@shoal/core';
import type { RegistryResponse } from '@shoal/registry-client';
import { ClientGoneError } from './errors.js';
import { grantManifestBlobs } from './manifest-grants.js';
import { API_VERSION, API_VERSION_HEADER, clientGoneSignal, headerValue, refusalAnswer, safeErrorStatus, sendOciError } from './oci-reply.js';
import {
  checkAccessOrRemember,
  isOutageStatus,
  isRegistryUnreachable,
  outageMemory,
  recallChallenge,
  rememberChallenge,
  rememberGrant,
  rememberTag,
  rememberTagFromHeaders,
} from './outage.js';
import type { ProxyContext } from './plugins/context.js';
import { CaptureUpTo } from './streams.js';
import type { TagKey } from './tag-memory.js';
import { discard, parseContentLength, pickHeaders } from './upstream.js';

export interface ManifestTarget {
  registry: string;
  repository: string;
  /** Tag or digest as requested. */
  reference: string;
  /** Set when the reference is a digest. */
  digest: Digest | undefined;
}

/**
 * Manifests. By tag: forwarded upstream every time (tags move), exact status,
 * bytes and headers back, Accept and Authorization forwarded as sent; when the
 * registry is unreachable or answers 5xx, the last good answer for that tag
 * (stale-if-error, marked `x-shoal-stale`) goes to a credential the registry
 * answered 200 for it. By digest: served from the in-memory cache once the
 * client's credential has been checked upstream with a HEAD (a cached private
 * manifest is never served to someone the registry would refuse; during an
 * outage a remembered grant stands in); otherwise forwarded like a tag.
 */
export async function serveManifest(ctx: ProxyContext, request: FastifyRequest, reply: FastifyReply, target: ManifestTarget): Promise<FastifyReply> {
  const authorization = headerValue(request.headers.authorization);
  const accept = headerValue(request.headers.accept);
  const method = request.method === 'HEAD' ? 'HEAD' : 'GET';
  const signal = clientGoneSignal(reply, () => new ClientGoneError());
  const accessKey =
    target.digest === undefined
      ? undefined
      : { kind: 'manifest' as const, authorization, registry: target.registry, repository: target.repository, digest: target.digest };

  if (accessKey !== undefined) {
    const cached = ctx.manifests.get(accessKey.digest);
    if (cached !== undefined || method === 'HEAD') {
      const access = await checkAccessOrRemember(ctx, request.log, accessKey, { accept, signal });
      if (!access.ok) {
        const answer = refusalAnswer('manifest', access.upstreamStatus, `${target.repository}@${accessKey.digest}`);
        return sendOciError(reply, answer.statusCode, answer.code, answer.message, access.headers);
      }
      if (cached !== undefined) {
        if (method === 'GET') grantManifestBlobs(ctx, request.log, { ...target, authorization }, cached.bytes, cached.contentType);
        reply.code(200).headers({
          'content-type': cached.contentType,
          'content-length': String(cached.bytes.length),
          'docker-content-digest': accessKey.digest,
          etag: `"${accessKey.digest}"`,
          [API_VERSION_HEADER]: API_VERSION,
        });
        return method === 'HEAD' ? reply.send() : reply.send(cached.bytes);
      }
      // HEAD by digest, not cached: the access check was exactly the upstream HEAD.
      return reply.code(200).headers(access.grant.headers).send();
    }
  }

  const tagKey: TagKey | undefined =
    target.digest === undefined ? { registry: target.registry, repository: target.repository, tag: target.reference, accept } : undefined;
  let response: RegistryResponse;
  try {
    response = await ctx.upstream.registry.request({
      registry: target.registry,
      path: `/v2/${target.repository}/manifests/${target.reference}`,
      method,
      headers: accept === undefined ? {} : { accept },
      authorization,
      signal,
    });
  } catch (err) {
    if (tagKey !== undefined && isRegistryUnreachable(err)) {
      const stale = answerStale(ctx, request, reply, tagKey, authorization, err.message);
      if (stale !== undefined) return stale;
    }
    throw err;
  }
  const { statusCode, headers } = response;
  if (tagKey !== undefined && isOutageStatus(statusCode)) {
    const stale = answerStale(ctx, request, reply, tagKey, authorization, `registry answered ${statusCode}`);
    if (stale !== undefined) {
      discard(response);
      return stale;
    }
  }
  if (statusCode === 401) rememberChallenge(ctx, target.registry, target.repository, authorization, headers['www-authenticate']);
  // 2xx, and 4xx/5xx that containerd handles well (not 408/429), go back as they are.
  const passThrough = (statusCode >= 200 && statusCode <= 299) || safeErrorStatus(statusCode) === statusCode;
  if (!passThrough) {
    discard(response);
    const answer = refusalAnswer('manifest', statusCode, `${target.repository}:${target.reference}`);
    return sendOciError(reply, answer.statusCode, answer.code, answer.message, pickHeaders(headers, ['www-authenticate']));
  }
  reply.code(statusCode).headers(pickHeaders(headers));
  if (method === 'HEAD') {
    discard(response);
    if (statusCode === 200 && tagKey !== undefined) rememberTagFromHeaders(ctx, tagKey, authorization, headers);
    return reply.send();
  }
  if (statusCode !== 200) return reply.send(response.body);

  if (accessKey !== undefined) {
    const sizeBytes = parseContentLength(headers['content-length']);
    if (sizeBytes !== undefined) {
      const grant = { sizeBytes, headers: pickHeaders(headers) };
      rememberGrant(ctx, accessKey, grant);
    }
  }
  const contentType = headers['content-type'];
  const announced = headers['docker-content-digest'];
  const length = parseContentLength(headers['content-length']);
  if (contentType === undefined || (length !== undefined && length > ctx.manifests.maxEntryBytes)) {
    // Not kept: a stale GET could not be answered, but a stale HEAD can.
    if (tagKey !== undefined) rememberTagFromHeaders(ctx, tagKey, authorization, headers);
    return reply.send(response.body);
  }
  // Keep a copy while it streams through, cached under the digest of its bytes
  // (a tag's manifest is fetched by digest right after resolution).
  const capture = new CaptureUpTo(ctx.manifests.maxEntryBytes, (bytes) => {
    const digest = digestOf(bytes);
    if (target.digest !== undefined && digest !== target.digest) {
      request.log.warn({ registry: target.registry, repository: target.repository, expected: target.digest, digest }, 'manifest bytes do not match their digest');
      return;
    }
    if (announced !== undefined && isDigest(announced) && announced !== digest) {
      request.log.warn({ registry: target.registry, repository: target.repository, announced, digest }, 'manifest bytes do not match Docker-Content-Digest');
      return;
    }
    ctx.manifests.set(digest, bytes, contentType);
    grantManifestBlobs(ctx, request.log, { ...target, authorization }, bytes, contentType);
    if (tagKey !== undefined) rememberTag(ctx, tagKey, authorization, { digest, contentType, sizeBytes: bytes.length });
  });
  pipeline(response.body, capture, (err) => {
    if (err !== undefined && err !== null) request.log.debug({ err, repository: target.repository, reference: target.reference }, 'manifest body failed');
  });
  return reply.send(capture);
}

/**
 * Answers a tag from its last good answer while the registry is unreachable
 * or failing, if this credential was answered 200 for it within
 * `staleIfErrorMs` (and, for a GET, the bytes are still in the manifest
 * cache); an anonymous request without one gets the registry's last 401
 * challenge for the repository, if there was one. Undefined otherwise: the
 * caller answers the outage as before.
 */
function answerStale(
  ctx: ProxyContext,
  request: FastifyRequest,
  reply: FastifyReply,
  key: TagKey,
  authorization: string | undefined,
  cause: string,
): FastifyReply | undefined {
  const remembered = outageMemory(ctx).tags.recall(key, authorization);
  if (remembered === undefined) {
    // containerd sends credentials only after a 401: an anonymous request gets the registry's last challenge.
    const challenge = recallChallenge(ctx, key.registry, key.repository, authorization);
    if (challenge === undefined) return undefined;
    request.log.info({ registry: key.registry, repository: key.repository, tag: key.tag, cause }, 'registry unavailable; anonymous request answered with its last challenge');
    return sendOciError(reply, 401, 'UNAUTHORIZED', `authentication required for ${key.repository}:${key.tag}`, { 'www-authenticate': challenge });
  }
  const { answer, ageMs } = remembered;
  const bytes = request.method === 'HEAD' ? undefined : ctx.manifests.get(answer.digest)?.bytes;
  if (request.method !== 'HEAD' && bytes === undefined) return undefined;
  const ageSeconds = Math.floor(ageMs / 1000);
  request.log.warn(
    { registry: key.registry, repository: key.repository, tag: key.tag, digest: answer.digest, ageSeconds, cause },
    'registry unavailable; tag answered from its last known digest',
  );
  reply.code(200).headers({
    'content-type': answer.contentType,
    'content-length': String(bytes?.length ?? answer.sizeBytes),
    'docker-content-digest': answer.digest,
    etag: `"${answer.digest}"`,
    [API_VERSION_HEADER]: API_VERSION,
    [HEADER.stale]: String(ageSeconds),
  });
  return bytes === undefined ? reply.send() : reply.send(bytes);
}
