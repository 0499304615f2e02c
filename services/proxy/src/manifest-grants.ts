import type { FastifyBaseLogger } from 'fastify';
import { parseManifest, type Descriptor } from '@shoal/core';
import { rememberGrant } from './outage.js';
import type { ProxyContext } from './plugins/context.js';

/** Where an image manifest was just served, and to whom. */
export interface ServedManifest {
  registry: string;
  repository: string;
  /** The Authorization the registry served it to (undefined: anonymous). */
  authorization: string | undefined;
}

/**
 * The blobs an image manifest names are granted to the credential the registry
 * has just served that manifest to, in that repository, with the sizes the
 * manifest gives: containerd's requests for them then skip the access check's
 * HEAD, one registry round trip per blob and node at a pull's start. A registry
 * grants pull per repository, and it accepts a manifest only once every blob
 * it names is in that repository, so the HEAD would say yes. Not for a
 * descriptor that lists `urls` (a foreign, non-distributable layer the
 * registry may not hold): that one is still asked. The grants last as long as
 * a HEAD's (the access cache's TTL) and are remembered for outages like one.
 *
 * `bytes` are the manifest's verified bytes; an index grants nothing (its
 * platform manifest is fetched next, and grants then).
 */
export function grantManifestBlobs(ctx: ProxyContext, log: FastifyBaseLogger, served: ServedManifest, bytes: Buffer, contentType: string | undefined): void {
  let blobs: Descriptor[];
  try {
    const manifest = parseManifest(bytes, contentType, `${served.repository} manifest`);
    if (manifest.kind !== 'manifest') return;
    blobs = [manifest.config, ...manifest.layers];
  } catch (err) {
    log.debug({ err, registry: served.registry, repository: served.repository }, 'manifest not read for blob grants; its blobs are checked one by one');
    return;
  }
  let granted = 0;
  for (const blob of blobs) {
    if (blob.hasUrls) continue;
    const key = { kind: 'blob' as const, authorization: served.authorization, registry: served.registry, repository: served.repository, digest: blob.digest };
    const grant = { sizeBytes: blob.sizeBytes, headers: {} };
    rememberGrant(ctx, key, grant);
    granted++;
  }
  log.debug({ registry: served.registry, repository: served.repository, blobs: granted }, 'blobs granted by their manifest');
}
