import { isRecord, type ImageReference } from '@shoal/core';
import { PullSecretInvalidError } from '../errors.js';

/** The Secret type pull secrets must have. */
export const DOCKER_CONFIG_JSON_TYPE = 'kubernetes.io/dockerconfigjson';
/** A .dockerconfigjson larger than this is refused rather than parsed. Bytes: 256 KiB. */
const MAX_DOCKER_CONFIG_BYTES = 256 * 1024;

const DOCKER_HUB_KEYS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** `https://host:port/v1/` → `host:port`, as kubelet matches `auths` keys. */
function registryHostOf(key: string): string {
  let k = key.trim().toLowerCase();
  k = k.replace(/^[a-z]+:\/\//, '');
  const slash = k.indexOf('/');
  return slash >= 0 ? k.slice(0, slash) : k;
}

/**
 * The `Authorization` value (`Basic ...`) for the image's registry from a
 * kubernetes.io/dockerconfigjson Secret's data (base64 `.dockerconfigjson`),
 * or undefined when the Secret holds nothing for that registry. Throws with
 * PullSecretInvalidError, whose message never quotes the secret's content.
 */
export function authorizationFromDockerConfig(data: Readonly<Record<string, string>>, image: ImageReference): string | undefined {
  const encoded = data['.dockerconfigjson'];
  if (encoded === undefined) throw new PullSecretInvalidError('it has no .dockerconfigjson key');
  if (encoded.length > (MAX_DOCKER_CONFIG_BYTES * 4) / 3 + 4) throw new PullSecretInvalidError('its .dockerconfigjson is too large');
  let config: unknown;
  try {
    config = JSON.parse(Buffer.from(encoded, 'base64').toString('utf8'));
  } catch {
    throw new PullSecretInvalidError('its .dockerconfigjson is not JSON');
  }
  const auths = isRecord(config) ? config.auths : undefined;
  if (typeof auths !== 'object' || auths === null) throw new PullSecretInvalidError('its .dockerconfigjson has no auths');
  const wanted = image.registryName.toLowerCase();
  const hub = DOCKER_HUB_KEYS.has(wanted) || DOCKER_HUB_KEYS.has(image.registry.toLowerCase());
  for (const [key, entry] of Object.entries(auths as Record<string, unknown>)) {
    const host = registryHostOf(key);
    if (host !== wanted && host !== image.registry.toLowerCase() && !(hub && DOCKER_HUB_KEYS.has(host))) continue;
    if (!isRecord(entry)) continue;
    if (typeof entry.auth === 'string' && entry.auth !== '') return `Basic ${entry.auth}`;
    if (typeof entry.username === 'string' && typeof entry.password === 'string') return `Basic ${Buffer.from(`${entry.username}:${entry.password}`).toString('base64')}`;
  }
  return undefined;
}
