import { isRecord, UpstreamError } from '@shoal/core';

/** Largest token-endpoint body we read: real ones are a few KiB. */
export const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024;
/** Lifetime assumed when the endpoint does not say (docker token spec). */
export const DEFAULT_TOKEN_EXPIRES_IN_SECONDS = 60;
/** Longest lifetime we believe, so a bogus `expires_in` cannot pin a token forever. */
export const MAX_TOKEN_EXPIRES_IN_SECONDS = 24 * 60 * 60;

export interface TokenResponse {
  token: string;
  expiresInSeconds: number;
}

// A token goes into an HTTP header: visible ASCII only, no spaces, no CR/LF.
const TOKEN_CHARS_RE = /^[\x21-\x7e]+$/;

/**
 * Parses the JSON body of a token endpoint (docker token-auth spec: `token`
 * or OAuth2 `access_token`, optional `expires_in` seconds). Throws
 * UpstreamError (502) on anything else.
 */
export function parseTokenResponse(body: string): TokenResponse {
  if (Buffer.byteLength(body) > MAX_TOKEN_RESPONSE_BYTES) {
    throw new UpstreamError(`token response larger than ${MAX_TOKEN_RESPONSE_BYTES} bytes`);
  }
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (err) {
    throw new UpstreamError('token response is not JSON', { cause: err });
  }
  if (!isRecord(value)) throw new UpstreamError('token response is not a JSON object');
  const record = value;
  const raw = typeof record.token === 'string' && record.token !== '' ? record.token : record.access_token;
  if (typeof raw !== 'string' || raw === '') throw new UpstreamError('token response has no token');
  if (!TOKEN_CHARS_RE.test(raw)) throw new UpstreamError('token response has a token with invalid characters');
  const expiresIn = record.expires_in;
  const expiresInSeconds =
    typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0
      ? Math.min(expiresIn, MAX_TOKEN_EXPIRES_IN_SECONDS)
      : DEFAULT_TOKEN_EXPIRES_IN_SECONDS;
  return { token: raw, expiresInSeconds };
}
