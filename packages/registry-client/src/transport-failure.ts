/**
 * Classification of errors thrown by undici before a response arrived, for the
 * retry loop and the UpstreamError mapping (fastify-reply-from does the same).
 */

export interface TransportFailure {
  /** 504 for timeouts, 502 for everything else. */
  statusCode: 502 | 504;
  /** Worth another attempt: the failure is plausibly transient. */
  retryable: boolean;
  /** The most specific error code found, for logs. */
  code: string | undefined;
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT', 'ESOCKETTIMEDOUT']);

const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
]);

function codeOf(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const code = (value as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** Codes of the error, its cause, and (for Happy Eyeballs' AggregateError) each attempt. */
function codesOf(err: unknown): string[] {
  const codes: string[] = [];
  const push = (v: unknown): void => {
    const c = codeOf(v);
    if (c !== undefined) codes.push(c);
  };
  push(err);
  if (typeof err === 'object' && err !== null) {
    push((err as { cause?: unknown }).cause);
    const errors = (err as { errors?: unknown }).errors;
    if (Array.isArray(errors)) for (const e of errors.slice(0, 10)) push(e);
  }
  return codes;
}

export function classifyTransportError(err: unknown): TransportFailure {
  const codes = codesOf(err);
  const timeout = codes.find((c) => TIMEOUT_CODES.has(c));
  if (timeout !== undefined) return { statusCode: 504, retryable: true, code: timeout };
  const transient = codes.find((c) => TRANSIENT_CODES.has(c));
  if (transient !== undefined) return { statusCode: 502, retryable: true, code: transient };
  // DNS NXDOMAIN, TLS verification, a closed client, invalid arguments: another try changes nothing.
  return { statusCode: 502, retryable: false, code: codes[0] };
}
