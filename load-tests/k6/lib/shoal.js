// @ts-check
// Shared by the k6 scripts: configuration from environment variables, image
// references, manifests. Runs inside k6 (goja), not Node: no Node APIs here.
import http from 'k6/http';
import crypto from 'k6/crypto';
import { fail } from 'k6';

/** Every manifest media type a mirror must answer for (containerd sends the same list). */
export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

const INDEX_TYPES = ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'];

/**
 * A string environment variable (`k6 run -e NAME=value`, or the process environment).
 * @param {string} name
 * @param {string} [fallback]
 * @returns {string}
 */
export function env(name, fallback) {
  const value = __ENV[name];
  if (value !== undefined && value !== '') return value;
  if (fallback !== undefined) return fallback;
  return fail(`${name} is required (k6 run -e ${name}=...)`);
}

/**
 * A positive number from the environment.
 * @param {string} name
 * @param {number} fallback
 * @returns {number}
 */
export function envNumber(name, fallback) {
  const text = __ENV[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) return fail(`${name} must be a non-negative number, not ${JSON.stringify(text)}`);
  return value;
}

/**
 * A comma-separated list from the environment (blanks dropped).
 * @param {string} name
 * @returns {string[]}
 */
export function envList(name) {
  return env(name).split(',').map((s) => s.trim().replace(/\/+$/, '')).filter((s) => s !== '');
}

/**
 * k6's `vus` and `iterations`, or `duration`, from VUS, ITERATIONS and DURATION.
 * @param {number} vus
 * @param {number} iterations
 * @returns {{ vus: number, iterations?: number, duration?: string }}
 */
export function loadShape(vus, iterations) {
  const v = envNumber('VUS', vus);
  const duration = __ENV.DURATION;
  if (duration !== undefined && duration !== '') return { vus: v, duration };
  return { vus: v, iterations: Math.max(v, envNumber('ITERATIONS', iterations)) };
}

/**
 * `registry[:port]/repository:tag` (or `@sha256:...`), as containerd reads it; docker.io is
 * written out as `registry-1.docker.io` only when the caller does so.
 * @param {string} text
 * @returns {{ registry: string, repository: string, reference: string }}
 */
export function parseImage(text) {
  const at = text.indexOf('@');
  const slash = text.indexOf('/');
  if (slash <= 0) return fail(`image ${text}: expected registry/repository:tag`);
  const registry = text.slice(0, slash);
  let rest = text.slice(slash + 1);
  let reference = 'latest';
  if (at > slash) {
    reference = text.slice(at + 1);
    rest = text.slice(slash + 1, at);
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon > 0) {
      reference = rest.slice(colon + 1);
      rest = rest.slice(0, colon);
    }
  }
  return { registry, repository: rest, reference };
}

/**
 * `sha256:<hex>` of a body.
 * @param {ArrayBuffer | string} body
 * @returns {string}
 */
export function digestOf(body) {
  return `sha256:${crypto.sha256(body, 'hex')}`;
}

/** @typedef {{ mediaType?: string, digest: string, size: number, platform?: { os: string, architecture: string, variant?: string } }} Descriptor */
/** @typedef {{ mediaType?: string, manifests?: Descriptor[], config?: Descriptor, layers?: Descriptor[] }} Manifest */

/**
 * The manifest of `platform` (`os/arch[/variant]`) in an index, or the manifest itself.
 * @param {Manifest} manifest
 * @param {string | null} contentType
 * @param {string} platform
 * @returns {Descriptor | undefined} the descriptor to fetch next; undefined when `manifest` is an image manifest
 */
export function platformManifest(manifest, contentType, platform) {
  const type = manifest.mediaType ?? contentType ?? '';
  if (!INDEX_TYPES.includes(type) && manifest.manifests === undefined) return undefined;
  const [os, architecture, variant] = platform.split('/');
  const found = (manifest.manifests ?? []).find(
    (d) => d.platform !== undefined && d.platform.os === os && d.platform.architecture === architecture && (variant === undefined || d.platform.variant === variant),
  );
  return found ?? fail(`no ${platform} manifest in the index`);
}

/**
 * Query string containerd adds when the mirror is not the image's own registry.
 * @param {string} registry
 */
export function nsQuery(registry) {
  return `ns=${encodeURIComponent(registry)}`;
}

/**
 * Request headers carrying the cluster token when one is set (SHOAL_TOKEN).
 * @param {Record<string, string>} [extra]
 * @returns {Record<string, string>}
 */
export function tokenHeaders(extra = {}) {
  const token = __ENV.SHOAL_TOKEN;
  return token === undefined || token === '' ? { ...extra } : { ...extra, 'x-shoal-token': token };
}

/**
 * Resolves a tag through a proxy with HEAD, as containerd does.
 * @param {string} proxy
 * @param {{ registry: string, repository: string, reference: string }} image
 * @param {Record<string, string>} [tags]
 * @returns {string | undefined} the digest, or undefined when the answer has none
 */
export function resolveTag(proxy, image, tags = {}) {
  const res = http.head(`${proxy}/v2/${image.repository}/manifests/${image.reference}?${nsQuery(image.registry)}`, {
    headers: { Accept: MANIFEST_ACCEPT },
    tags: { name: 'resolve', ...tags },
  });
  if (res.status !== 200) return undefined;
  const digest = res.headers['Docker-Content-Digest'];
  return typeof digest === 'string' && digest.startsWith('sha256:') ? digest : undefined;
}
