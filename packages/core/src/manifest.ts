import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { digestOf, isDigest, type Digest } from './digest.js';
import { DigestMismatchError, ManifestInvalidError, ManifestUnsupportedError, PlatformUnknownError } from './errors.js';
import { isRecord } from './json.js';
import { isIndexMediaType, isManifestMediaType, MANIFEST_ACCEPT } from './media-types.js';
import { platformMatches, platformText, type Platform } from './platform.js';

/**
 * The image-manifest layer: the one place that reads OCI and Docker schema 2
 * manifests and indexes (parse, validated against the schemas below), picks the
 * manifests of an index for platforms (one matching rule, platformMatches), and
 * walks tag → index → platform manifest over a fetch the caller supplies (the
 * CLI through a node's proxy, the supernode through its registry client), so
 * `shoal pull`, `shoal doctor`, `shoal preheat` and the ImagePullJob
 * controller choose the same manifest for the same platform.
 */

/** Manifests and indexes are small; a larger answer is refused rather than buffered. Bytes: 4 MiB. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Entries of one index, or layers of one manifest, at most (a 4 MiB body holds ~20k; images have tens). */
export const MAX_MANIFEST_DESCRIPTORS = 4096;

/** Docker's buildx marks attestation manifests in an index with this annotation (and platform unknown/unknown). */
export const REFERENCE_TYPE_ANNOTATION = 'vnd.docker.reference.type';

const PlatformSchema = Type.Object({
  os: Type.String({ maxLength: 128 }),
  architecture: Type.String({ maxLength: 128 }),
  variant: Type.Optional(Type.String({ maxLength: 128 })),
});

/**
 * An OCI descriptor (image-spec descriptor.md); unknown fields (urls, data, artifactType...) are allowed and ignored.
 * Any size a JSON number holds exactly is valid here: a blob larger than the swarm carries
 * (MAX_BLOB_SIZE_BYTES) is still part of the image, and whoever handles it decides (the proxy
 * sends it to the registry, a preheat leaves it out).
 */
const DescriptorSchema = Type.Object({
  mediaType: Type.Optional(Type.String({ maxLength: 255 })),
  digest: Type.String({ pattern: '^sha256:[a-f0-9]{64}$' }),
  size: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  platform: Type.Optional(PlatformSchema),
  annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
});

/** An OCI image index or Docker manifest list. */
export const ImageIndexSchema = Type.Object({
  mediaType: Type.Optional(Type.String({ maxLength: 255 })),
  manifests: Type.Array(DescriptorSchema, { maxItems: MAX_MANIFEST_DESCRIPTORS }),
});

/** An OCI image manifest or Docker schema 2 manifest. */
export const ImageManifestSchema = Type.Object({
  mediaType: Type.Optional(Type.String({ maxLength: 255 })),
  config: DescriptorSchema,
  layers: Type.Array(DescriptorSchema, { maxItems: MAX_MANIFEST_DESCRIPTORS }),
});

type RawDescriptor = Static<typeof DescriptorSchema>;

/** One entry of an index, or a config or layer of a manifest, as read from the registry. */
export interface Descriptor {
  mediaType: string | undefined;
  digest: Digest;
  sizeBytes: number;
  platform: Platform | undefined;
  annotations: Readonly<Record<string, string>>;
  /** The descriptor lists `urls` to fetch it from (a foreign, non-distributable layer): its registry may not hold it. */
  hasUrls: boolean;
}

export interface ImageIndex {
  kind: 'index';
  mediaType: string | undefined;
  manifests: Descriptor[];
}

export interface ImageManifest {
  kind: 'manifest';
  mediaType: string | undefined;
  config: Descriptor;
  layers: Descriptor[];
}

export type ParsedManifest = ImageIndex | ImageManifest;

function descriptor(d: RawDescriptor): Descriptor {
  const platform = d.platform === undefined ? undefined : { os: d.platform.os, architecture: d.platform.architecture, variant: d.platform.variant };
  const urls = (d as RawDescriptor & { urls?: unknown }).urls;
  const hasUrls = Array.isArray(urls) && urls.length > 0;
  return { mediaType: d.mediaType, digest: d.digest as Digest, sizeBytes: d.size, platform, annotations: d.annotations ?? {}, hasUrls };
}

/** Checks `value` against `schema`; the error names the first problem in a registry user's words. */
function check<T extends TSchema>(schema: T, value: unknown, where: string): Static<T> {
  if (Value.Check(schema, value)) return value;
  const first = Value.Errors(schema, value).First();
  const path = first?.path ?? '/';
  if (path.endsWith('/digest')) throw new ManifestInvalidError(`${where}: a descriptor without a valid sha256 digest (at ${path})`);
  if (path.endsWith('/size')) throw new ManifestInvalidError(`${where}: the descriptor at ${path.slice(0, -'/size'.length)} has an invalid size`);
  throw new ManifestInvalidError(`${where}: invalid manifest: ${path} ${first?.message ?? 'does not match the schema'}`);
}

/**
 * Parses a manifest or index body. The media type is the body's own
 * `mediaType`, else the response's Content-Type, else the shape (OCI makes
 * `mediaType` optional). Schema 1 and anything else is ManifestUnsupportedError;
 * a body that is not a valid manifest is ManifestInvalidError (an UpstreamError, 502).
 */
export function parseManifest(body: Buffer, contentType: string | undefined, where: string): ParsedManifest {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    json = undefined;
  }
  if (!isRecord(json)) throw new ManifestInvalidError(`${where}: the registry sent a manifest that is not a JSON object`);
  const own = typeof json.mediaType === 'string' && json.mediaType.length <= 255 ? json.mediaType : undefined;
  const mediaType = own ?? (contentType?.split(';')[0]?.trim() || undefined);
  const { manifests, layers } = json;
  if (isIndexMediaType(mediaType) || (!isManifestMediaType(mediaType) && Array.isArray(manifests) && layers === undefined)) {
    if (!Array.isArray(manifests)) throw new ManifestInvalidError(`${where}: an index without manifests`);
    if (manifests.length > MAX_MANIFEST_DESCRIPTORS) throw new ManifestUnsupportedError(`${where}: an index of ${manifests.length} manifests is too large (at most ${MAX_MANIFEST_DESCRIPTORS})`);
    const index = check(ImageIndexSchema, json, where);
    return { kind: 'index', mediaType, manifests: index.manifests.map(descriptor) };
  }
  if (isManifestMediaType(mediaType) || (Array.isArray(layers) && json.config !== undefined)) {
    if (!Array.isArray(layers) || json.config === undefined) throw new ManifestInvalidError(`${where}: a manifest without config or layers`);
    if (layers.length > MAX_MANIFEST_DESCRIPTORS) throw new ManifestUnsupportedError(`${where}: a manifest of ${layers.length} layers is too large (at most ${MAX_MANIFEST_DESCRIPTORS})`);
    const manifest = check(ImageManifestSchema, json, where);
    return { kind: 'manifest', mediaType, config: descriptor(manifest.config), layers: manifest.layers.map(descriptor) };
  }
  throw new ManifestUnsupportedError(`${where}: unsupported manifest type ${JSON.stringify(mediaType ?? 'unknown')} (OCI and Docker schema 2 manifests and indexes are read)`);
}

/** Attestations (provenance, SBOM) that buildx puts in an index: not runnable, never pulled by containerd. */
export function isAttestation(d: Descriptor): boolean {
  if (d.annotations[REFERENCE_TYPE_ANNOTATION] === 'attestation-manifest') return true;
  return d.platform?.os === 'unknown' && d.platform.architecture === 'unknown';
}

/**
 * The manifests of an index for `wanted` platforms; attestations
 * (`unknown/unknown`) never. Without `wanted`: every other entry. With it: the
 * entries matching each wanted platform (platformMatches: both sides in
 * containerd's normal form, and a platform without a variant matches every
 * variant of its architecture); each wanted platform must match at least one
 * entry, else PlatformUnknownError. An entry without a platform matches any
 * request, as in containerd's platform matcher. The result holds each digest
 * once, in index order.
 */
export function selectManifests(manifests: readonly Descriptor[], wanted: readonly Platform[] | undefined, reference: string): Descriptor[] {
  const chosen = new Set<Descriptor>();
  if (wanted === undefined) {
    for (const d of manifests) if (!isAttestation(d)) chosen.add(d);
  } else {
    for (const w of wanted) {
      const matches = manifests.filter((d) => !isAttestation(d) && (d.platform === undefined || platformMatches(d.platform, w)));
      if (matches.length === 0) {
        const available = [...new Set(manifests.flatMap((d) => (d.platform !== undefined && !isAttestation(d) ? [platformText(d.platform)] : [])))];
        throw new PlatformUnknownError(platformText(w), reference, available);
      }
      for (const d of matches) chosen.add(d);
    }
  }
  const seen = new Set<Digest>();
  return manifests.filter((d) => {
    if (!chosen.has(d) || seen.has(d.digest)) return false;
    seen.add(d.digest);
    return true;
  });
}

/** The one manifest of an index an image pull for `platform` uses: the first that selectManifests gives. */
export function selectManifest(manifests: readonly Descriptor[], platform: Platform, reference: string): Descriptor {
  const [first] = selectManifests(manifests, [platform], reference);
  // selectManifests throws rather than answer nothing for a wanted platform.
  if (first === undefined) throw new PlatformUnknownError(platformText(platform), reference, []);
  return first;
}

// --- fetch by reference --------------------------------------------------------

/** A manifest body as a registry (or a node's proxy) answered it, read with at most MAX_MANIFEST_BYTES. */
export interface FetchedManifest {
  body: Buffer;
  /** The response's Content-Type. */
  contentType: string | undefined;
  /** The response's Docker-Content-Digest, when it sent one. */
  digest?: string | undefined;
}

/**
 * GETs `/v2/<repository>/manifests/<reference>` with `accept`; answers
 * statuses other than 200 with the caller's own errors.
 */
export type ManifestFetch = (reference: string, accept: string) => Promise<FetchedManifest>;

export interface ReadManifest {
  manifest: ParsedManifest;
  /** The body's own digest (the Docker-Content-Digest the registry sent, for a tag). */
  digest: string;
}

/**
 * Fetches and parses one manifest or index by tag or digest. By digest, the
 * body must hash to it (DigestMismatchError otherwise).
 */
export async function readManifest(fetch: ManifestFetch, reference: string, accept: string, where: string): Promise<ReadManifest> {
  const fetched = await fetch(reference, accept);
  if (isDigest(reference)) {
    const actual = digestOf(fetched.body);
    if (actual !== reference) throw new DigestMismatchError(`${where}: the registry sent a manifest whose digest is ${actual}`);
  }
  return { manifest: parseManifest(fetched.body, fetched.contentType, where), digest: fetched.digest ?? digestOf(fetched.body) };
}

/**
 * The image manifest an image pull for `platform` uses: `reference` (a tag or
 * digest) names a manifest, or an index whose entry for the platform
 * (selectManifest) names one. An index inside an index is ManifestUnsupportedError.
 */
export async function resolveImageManifest(fetch: ManifestFetch, reference: string, platform: Platform, where: string): Promise<{ manifest: ImageManifest; digest: string }> {
  const top = await readManifest(fetch, reference, MANIFEST_ACCEPT, where);
  if (top.manifest.kind === 'manifest') return { manifest: top.manifest, digest: top.digest };
  const chosen = selectManifest(top.manifest.manifests, platform, where);
  const child = await readManifest(fetch, chosen.digest, chosen.mediaType ?? MANIFEST_ACCEPT, `${where}@${chosen.digest}`);
  if (child.manifest.kind !== 'manifest') throw new ManifestUnsupportedError(`${where}: ${chosen.digest} is an index inside an index`);
  return { manifest: child.manifest, digest: child.digest };
}
