import {
  destroyQuietly,
  MANIFEST_ACCEPT,
  MAX_BLOB_SIZE_BYTES,
  MAX_MANIFEST_BYTES,
  MAX_PREHEAT_BLOBS,
  ManifestUnknownError,
  ManifestUnsupportedError,
  platformText,
  readBounded,
  readManifest,
  selectManifests,
  UpstreamError,
  type Descriptor,
  type Digest,
  type FetchedManifest,
  type ImageReference,
  type ParsedManifest,
  type Platform,
  withDeadline,
} from '@shoal/core';
import type { RegistryClientApi } from '@shoal/registry-client';
import { PreheatUnsupportedError, UpstreamDeniedError } from './errors.js';

/** Manifests chosen from one index at most (each costs a registry request while the client waits). */
export const MAX_PREHEAT_MANIFESTS = 64;
/** How long resolving the image (tag, index, manifests) may take before the request fails. Milliseconds. */
export const PREHEAT_RESOLVE_TIMEOUT_MS = 60_000;

/** What a preheat job warms: the platforms it chose and every blob of theirs, once each. */
export interface ResolvedPreheatImage {
  platforms: string[];
  blobs: Array<{ digest: Digest; sizeBytes: number }>;
  /** Blobs larger than the swarm carries (MAX_BLOB_SIZE_BYTES): left out; a pull takes them from the registry. */
  tooLarge: Array<{ digest: Digest; sizeBytes: number }>;
}

/**
 * Resolves an image to the blobs a preheat job warms: its config and layers,
 * or for an index those of the chosen platforms (selectManifests, the manifest
 * layer's one platform rule). Bounded in time, manifests and blobs.
 */
export async function resolvePreheatImage(
  registry: RegistryClientApi,
  request: { image: ImageReference; imageText: string; platforms: readonly Platform[] | undefined },
  authorization: string | undefined,
  signal: AbortSignal | undefined,
): Promise<ResolvedPreheatImage> {
  const { image } = request;
  const combined = withDeadline(signal, PREHEAT_RESOLVE_TIMEOUT_MS).signal;
  const top = await fetchManifest(registry, image, image.digest ?? image.tag ?? 'latest', image.digest, MANIFEST_ACCEPT, authorization, combined);
  const manifests: Array<{ platform: string | undefined; config: Descriptor; layers: Descriptor[] }> = [];
  if (top.kind === 'manifest') {
    manifests.push({ platform: undefined, ...top });
  } else {
    const chosen = selectManifests(top.manifests, request.platforms, request.imageText);
    if (chosen.length > MAX_PREHEAT_MANIFESTS) {
      throw new PreheatUnsupportedError(`${request.imageText}: ${chosen.length} manifests chosen, at most ${MAX_PREHEAT_MANIFESTS} per job (name platforms with --platform)`);
    }
    for (const d of chosen) {
      const child = await fetchManifest(registry, image, d.digest, d.digest, d.mediaType ?? MANIFEST_ACCEPT, authorization, combined);
      if (child.kind !== 'manifest') throw new PreheatUnsupportedError(`${request.imageText}: ${d.digest} is an index inside an index, which preheat does not walk`);
      manifests.push({ platform: d.platform === undefined ? undefined : platformText(d.platform), ...child });
    }
  }
  const blobs = new Map<Digest, number>();
  const tooLarge = new Map<Digest, number>();
  for (const m of manifests) {
    for (const d of [m.config, ...m.layers]) (d.sizeBytes > MAX_BLOB_SIZE_BYTES ? tooLarge : blobs).set(d.digest, d.sizeBytes);
  }
  const count = blobs.size + tooLarge.size;
  if (count > MAX_PREHEAT_BLOBS) throw new PreheatUnsupportedError(`${request.imageText}: ${count} blobs, at most ${MAX_PREHEAT_BLOBS} per job`);
  return {
    platforms: [...new Set(manifests.flatMap((m) => (m.platform === undefined ? [] : [m.platform])))],
    blobs: [...blobs].map(([digest, sizeBytes]) => ({ digest, sizeBytes })),
    tooLarge: [...tooLarge].map(([digest, sizeBytes]) => ({ digest, sizeBytes })),
  };
}

/** GET one manifest or index, bounded, checked against its digest when it was asked for by digest (the manifest layer's readManifest). */
async function fetchManifest(
  registry: RegistryClientApi,
  image: ImageReference,
  reference: string,
  digest: Digest | undefined,
  accept: string,
  authorization: string | undefined,
  signal: AbortSignal,
): Promise<ParsedManifest> {
  const where = `${image.registryName}/${image.repository}${digest === undefined ? `:${reference}` : `@${reference}`}`;
  const fetch = async (ref: string, acceptTypes: string): Promise<FetchedManifest> => {
    const response = await registry.request({
      registry: image.registry,
      path: `/v2/${image.repository}/manifests/${ref}`,
      method: 'GET',
      headers: { accept: acceptTypes },
      authorization,
      signal,
    });
    const status = response.statusCode;
    if (status !== 200) {
      destroyQuietly(response.body);
      if (status === 404) throw new ManifestUnknownError(where);
      if (status === 401 || status === 403) throw new UpstreamDeniedError(`manifest ${where}${authorization === undefined ? ' (no registry credentials were given)' : ''}`, { upstreamStatus: status });
      throw new UpstreamError(`registry answered ${status} for manifest ${where}`, { upstreamStatus: status });
    }
    const declared = Number(response.headers['content-length']);
    if (Number.isFinite(declared) && declared > MAX_MANIFEST_BYTES) {
      destroyQuietly(response.body);
      throw new PreheatUnsupportedError(`${where}: manifest of ${declared} bytes, larger than ${MAX_MANIFEST_BYTES}`);
    }
    const body = await readBounded(response.body, MAX_MANIFEST_BYTES, () => new PreheatUnsupportedError(`${where}: manifest larger than ${MAX_MANIFEST_BYTES} bytes`));
    return { body, contentType: response.headers['content-type'] };
  };
  try {
    return (await readManifest(fetch, reference, accept, where)).manifest;
  } catch (err) {
    // Preheat's own code for what it cannot walk, as its API has always answered.
    if (err instanceof ManifestUnsupportedError) throw new PreheatUnsupportedError(err.message);
    throw err;
  }
}
