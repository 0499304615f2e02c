import { parseDigest, type Digest } from './digest.js';
import { DigestInvalidError, NameInvalidError, RouteNotFoundError } from './errors.js';

// Grammar from distribution/reference: path components joined by '/'.
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
const REPOSITORY_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
// host[:port]; an IPv6 literal in brackets; no userinfo, no path.
const HOST_RE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;

/** Longest repository name a registry accepts (distribution-spec). */
export const MAX_REPOSITORY_LENGTH = 255;

export const DOCKER_HUB = 'docker.io';
/** Where `docker.io` really lives (containerd maps it the same way). */
export const DOCKER_HUB_API = 'registry-1.docker.io';

export function parseRepository(name: string): string {
  if (name.length === 0 || name.length > MAX_REPOSITORY_LENGTH || !REPOSITORY_RE.test(name)) {
    throw new NameInvalidError(`invalid repository name ${JSON.stringify(name.slice(0, 300))}`);
  }
  return name;
}

export function parseTag(tag: string): string {
  if (!TAG_RE.test(tag)) throw new NameInvalidError(`invalid tag ${JSON.stringify(tag.slice(0, 200))}`);
  return tag;
}

/**
 * Parses a registry host as given by containerd's `?ns=` or a user: `host`,
 * `host:port` or `[v6]:port`. `docker.io` becomes `registry-1.docker.io`.
 */
export function parseRegistryHost(text: string): string {
  if (text.length === 0 || text.length > 260 || !HOST_RE.test(text)) {
    throw new NameInvalidError(`invalid registry host ${JSON.stringify(text.slice(0, 100))}`);
  }
  const port = /:(\d+)$/.exec(text)?.[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
    throw new NameInvalidError(`invalid port in registry host ${text}`);
  }
  const lower = text.toLowerCase();
  return lower === DOCKER_HUB || lower === 'index.docker.io' ? DOCKER_HUB_API : lower;
}

export type RegistryRoute =
  | { kind: 'ping' }
  | { kind: 'manifest'; repository: string; reference: string; digest: Digest | undefined }
  | { kind: 'blob'; repository: string; digest: Digest };

/**
 * Parses the path of a registry API request (no query string). Throws
 * NameInvalidError / DigestInvalidError / RouteNotFoundError, so the caller
 * can answer with an OCI error body.
 */
export function parseRegistryPath(path: string): RegistryRoute {
  if (path === '/v2' || path === '/v2/') return { kind: 'ping' };
  if (!path.startsWith('/v2/')) throw new RouteNotFoundError(`not a registry API path: ${path.slice(0, 100)}`);
  const rest = path.slice(4);
  const blobAt = rest.lastIndexOf('/blobs/');
  const manifestAt = rest.lastIndexOf('/manifests/');
  if (blobAt > 0 && blobAt > manifestAt) {
    const repository = parseRepository(rest.slice(0, blobAt));
    const digest = parseDigest(decodeSegment(rest.slice(blobAt + 7), DigestInvalidError));
    return { kind: 'blob', repository, digest };
  }
  if (manifestAt > 0) {
    const repository = parseRepository(rest.slice(0, manifestAt));
    const reference = decodeSegment(rest.slice(manifestAt + 11), NameInvalidError);
    if (reference.includes(':')) return { kind: 'manifest', repository, reference, digest: parseDigest(reference) };
    return { kind: 'manifest', repository, reference: parseTag(reference), digest: undefined };
  }
  throw new RouteNotFoundError(`unsupported registry API path: ${path.slice(0, 100)}`);
}

/** decodeURIComponent throws a bare URIError on malformed escapes; untrusted paths need a typed 400. */
function decodeSegment(text: string, Invalid: new (message: string) => Error): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new Invalid(`malformed percent-encoding in ${JSON.stringify(text.slice(0, 100))}`);
  }
}

export interface ImageReference {
  /** API host, `registry-1.docker.io` for Docker Hub. */
  registry: string;
  /** The host as the user wrote it (`docker.io` for Docker Hub): what containerd uses as `ns`. */
  registryName: string;
  repository: string;
  tag: string | undefined;
  digest: Digest | undefined;
}

/** Parses `[host[:port]/]repo[:tag][@digest]` the way docker and containerd do. */
export function parseImageReference(text: string): ImageReference {
  let rest = text;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = parseDigest(rest.slice(at + 1));
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = parseTag(rest.slice(colon + 1));
    rest = rest.slice(0, colon);
  }
  let registryName = DOCKER_HUB;
  const firstSlash = rest.indexOf('/');
  const first = firstSlash >= 0 ? rest.slice(0, firstSlash) : '';
  if (firstSlash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    // index.docker.io is Docker Hub's legacy name: same ns for containerd, same library/ rule.
    registryName = first === 'index.docker.io' ? DOCKER_HUB : first;
    rest = rest.slice(firstSlash + 1);
  }
  if (registryName === DOCKER_HUB && !rest.includes('/')) rest = `library/${rest}`;
  if (tag === undefined && digest === undefined) tag = 'latest';
  return {
    registry: parseRegistryHost(registryName),
    registryName,
    repository: parseRepository(rest),
    tag,
    digest,
  };
}
