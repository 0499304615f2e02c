import type { FastifyReply } from 'fastify';
import { ociErrorBody, type OciErrorCode } from '@shoal/core';

export const API_VERSION_HEADER = 'docker-distribution-api-version';
export const API_VERSION = 'registry/2.0';

/**
 * The status containerd may be given. containerd retries 408/429 on the same
 * host (so the pull would hammer a throttled registry through us instead of
 * moving on) and treats a 3xx it did not follow as a hard error: those become
 * 503 and 502. Anything outside 400-599 that is not a success becomes 502.
 */
export function safeErrorStatus(statusCode: number): number {
  if (statusCode === 408 || statusCode === 429) return 503;
  if (statusCode >= 400 && statusCode <= 599) return statusCode;
  return 502;
}

/** Answers with an OCI error body (`{"errors":[{code,message}]}`). */
export function sendOciError(
  reply: FastifyReply,
  statusCode: number,
  code: OciErrorCode,
  message: string,
  headers: Record<string, string> = {},
): FastifyReply {
  return reply
    .code(safeErrorStatus(statusCode))
    .headers({ ...headers, [API_VERSION_HEADER]: API_VERSION, 'content-type': 'application/json; charset=utf-8' })
    .send(ociErrorBody(code, message));
}

/**
 * The OCI answer for an upstream refusal seen on a HEAD (no body to pass on):
 * 401 keeps its `www-authenticate` so containerd runs its token flow, 403/404
 * keep their status, 429 and 5xx become 503, 3xx 502.
 */
export function refusalAnswer(
  kind: 'blob' | 'manifest',
  upstreamStatus: number,
  subject: string,
): { statusCode: number; code: OciErrorCode; message: string } {
  switch (upstreamStatus) {
    case 401:
      return { statusCode: 401, code: 'UNAUTHORIZED', message: `authentication required for ${subject}` };
    case 403:
      return { statusCode: 403, code: 'DENIED', message: `access to ${subject} denied` };
    case 404:
      return kind === 'blob'
        ? { statusCode: 404, code: 'BLOB_UNKNOWN', message: `blob unknown to registry: ${subject}` }
        : { statusCode: 404, code: 'MANIFEST_UNKNOWN', message: `manifest unknown to registry: ${subject}` };
    case 429:
      return { statusCode: 503, code: 'TOOMANYREQUESTS', message: `the registry is rate-limiting requests for ${subject}` };
    default:
      if (upstreamStatus >= 500) return { statusCode: 503, code: 'UNKNOWN', message: `the registry answered ${upstreamStatus} for ${subject}` };
      return { statusCode: safeErrorStatus(upstreamStatus), code: 'UNKNOWN', message: `the registry answered ${upstreamStatus} for ${subject}` };
  }
}

/** A request header as one string (the first value when repeated). */
export function headerValue(value: string | string[] | undefined): string | undefined {
  if (Array.isArray(value)) return value[0];
  return value;
}

/**
 * An AbortSignal that fires when the client goes away before its response was
 * completely written, so upstream work it alone was waiting for stops.
 */
export function clientGoneSignal(reply: FastifyReply, reason: () => Error): AbortSignal {
  const controller = new AbortController();
  const res = reply.raw;
  if (res.destroyed && !res.writableFinished) controller.abort(reason());
  else res.once('close', () => {
    if (!res.writableFinished) controller.abort(reason());
  });
  return controller.signal;
}
