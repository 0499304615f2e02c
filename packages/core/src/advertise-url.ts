import { BadRequestError } from './errors.js';

/** Longest advertised URL accepted (the wire schema's bound). */
export const MAX_ADVERTISE_URL_LENGTH = 300;

/**
 * Parses a peer's advertised URL (how other peers reach it): `http(s)://host:port`
 * and nothing else. No user info (it would be sent to whoever dials it), no
 * path, query or fragment (a parent's URL is only ever a base for the piece
 * API: with a path, children could be made to GET anything on a host). Returns
 * the URL's origin, the one form every party uses.
 */
export function parseAdvertiseUrl(text: string): string {
  const shown = JSON.stringify(text.slice(0, 100));
  if (text.length > MAX_ADVERTISE_URL_LENGTH) throw new BadRequestError(`advertised URL is longer than ${MAX_ADVERTISE_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new BadRequestError(`advertised URL ${shown} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new BadRequestError(`advertised URL ${shown} must be http or https`);
  if (url.username !== '' || url.password !== '') throw new BadRequestError(`advertised URL ${shown} must not carry user info`);
  if (url.hostname === '') throw new BadRequestError(`advertised URL ${shown} has no host`);
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '' || /[?#]/.test(text)) {
    throw new BadRequestError(`advertised URL ${shown} must be scheme://host:port only (no path, query or fragment)`);
  }
  return url.origin;
}

/**
 * An IP address as a server sees a connection's remote end, in the form a URL's
 * hostname takes: IPv4-mapped IPv6 (`::ffff:10.0.0.5`) becomes `10.0.0.5`, other
 * IPv6 goes in brackets, lowercase.
 */
export function urlHostOfAddress(address: string): string {
  const a = address.toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
  if (mapped !== null) return mapped[1] as string;
  return a.includes(':') ? `[${a}]` : a;
}
