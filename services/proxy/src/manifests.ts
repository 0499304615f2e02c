import { pipeline } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { digestOf, isDigest, type Digest } from '@shoal/core';
import { ClientGoneError } from './errors.js';
import { API_VERSION, API_VERSION_HEADER, clientGoneSignal, headerValue, refusalAnswer, safeErrorStatus, sendOciError } from './oci-reply.js';
import type { ProxyContext } from './plugins/context.js';
import { CaptureUpTo } from './streams.js';
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
 * bytes and headers back, Accept and Authorization forwarded as sent. By digest:
 * served from the in-memory cache once the client's credential has been checked
 * upstream with a HEAD (a cached private manifest is never served to someone
 * the registry would refuse); otherwise forwarded like a tag.
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
      const access = await ctx.upstream.checkAccess(accessKey, { accept, signal });
      if (!access.ok) {
        const answer = refusalAnswer('manifest', access.upstreamStatus, `${target.repository}@${accessKey.digest}`);
        return sendOciError(reply, answer.statusCode, answer.code, answer.message, access.headers);
      }
      if (cached !== undefined) {
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

  const response = await ctx.upstream.registry.request({
    registry: target.registry,
    path: `/v2/${target.repository}/manifests/${target.reference}`,
    method,
    headers: accept === undefined ? {} : { accept },
    authorization,
    signal,
  });
  const { statusCode, headers } = response;
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
    return reply.send();
  }
  if (statusCode !== 200) return reply.send(response.body);

  if (accessKey !== undefined) {
    const sizeBytes = parseContentLength(headers['content-length']);
    if (sizeBytes !== undefined) ctx.upstream.grant(accessKey, { sizeBytes, headers: pickHeaders(headers) });
  }
  const contentType = headers['content-type'];
  const announced = headers['docker-content-digest'];
  const length = parseContentLength(headers['content-length']);
  if (contentType === undefined || (length !== undefined && length > ctx.manifests.maxEntryBytes)) return reply.send(response.body);
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
  });
  pipeline(response.body, capture, (err) => {
    if (err !== undefined && err !== null) request.log.debug({ err, repository: target.repository, reference: target.reference }, 'manifest body failed');
  });
  return reply.send(capture);
}
