import { Agent, request } from 'undici';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import {
  destroyQuietly,
  readBounded,
  DigestVerifier,
  HEADER,
  MAX_MANIFEST_BYTES,
  parsePlatform,
  resolveImageManifest,
  type Digest,
  type FetchedManifest,
  type ImageReference,
} from '@shoal/core';
import { PullError } from '../errors.js';

export interface PullProgress {
  (event: { kind: 'blob'; digest: Digest; bytes: number; source: string; durationMs: number } | { kind: 'manifest'; digest: string }): void;
}

export interface PullOptions {
  proxyUrl: string;
  image: ImageReference;
  /** `os/arch[/variant]`, chosen from an index by the manifest layer's one rule (selectManifest). */
  platform: string;
  authorization?: string | undefined;
  onProgress?: PullProgress;
}

export interface PullResult {
  manifestDigest: string;
  blobs: Array<{ digest: Digest; bytes: number; source: string; durationMs: number }>;
  totalBytes: number;
  durationMs: number;
}

/**
 * Fetches an image through a node's proxy the way containerd would (manifest,
 * platform choice, config and layers), verifying every blob, and reports where
 * each blob came from. The blobs land in the node's cache; nothing is unpacked.
 */
export async function pullImage(options: PullOptions): Promise<PullResult> {
  const started = Date.now();
  const dispatcher = new Agent({ connections: 8 });
  const { image } = options;
  const ns = encodeURIComponent(image.registryName);
  const base = options.proxyUrl.replace(/\/$/, '');
  const headers = (extra: Record<string, string>): Record<string, string> =>
    options.authorization === undefined ? extra : { ...extra, authorization: options.authorization };
  try {
    const getManifest = async (reference: string, accept: string): Promise<FetchedManifest> => {
      const res = await request(`${base}/v2/${image.repository}/manifests/${reference}?ns=${ns}`, { dispatcher, headers: headers({ accept }) });
      const body = await readBounded(res.body, MAX_MANIFEST_BYTES, () => new PullError(`manifest larger than ${MAX_MANIFEST_BYTES} bytes`));
      if (res.statusCode !== 200) throw new PullError(`manifest ${reference}: proxy answered ${res.statusCode} ${body.toString('utf8').slice(0, 300)}`);
      const digest = String(res.headers['docker-content-digest'] ?? '');
      options.onProgress?.({ kind: 'manifest', digest });
      const contentType = res.headers['content-type'];
      return { body, contentType: typeof contentType === 'string' ? contentType : undefined, digest: digest === '' ? undefined : digest };
    };
    const where = `${image.registryName}/${image.repository}`;
    const manifest = await resolveImageManifest(getManifest, image.digest ?? image.tag ?? 'latest', parsePlatform(options.platform), where);
    const descriptors = [manifest.manifest.config, ...manifest.manifest.layers];
    const blobs: PullResult['blobs'] = [];
    for (const d of descriptors) {
      const digest = d.digest;
      const blobStart = Date.now();
      const res = await request(`${base}/v2/${image.repository}/blobs/${digest}?ns=${ns}`, { dispatcher, headers: headers({ accept: '*/*' }) });
      if (res.statusCode !== 200) {
        destroyQuietly(res.body);
        throw new PullError(`blob ${digest}: proxy answered ${res.statusCode}`);
      }
      const source = String(res.headers[HEADER.source] ?? 'unknown');
      const verifier = new DigestVerifier(digest, d.sizeBytes);
      await pipeline(res.body, verifier, new Writable({ write: (_chunk, _enc, done) => done() }));
      const entry = { digest, bytes: verifier.bytes, source, durationMs: Date.now() - blobStart };
      blobs.push(entry);
      options.onProgress?.({ kind: 'blob', ...entry });
    }
    return { manifestDigest: manifest.digest, blobs, totalBytes: blobs.reduce((s, b) => s + b.bytes, 0), durationMs: Date.now() - started };
  } finally {
    await dispatcher.close();
  }
}
