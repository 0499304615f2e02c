/**
 * A FAKE registry client (RegistryClientApi) that never touches the network.
 * It answers deterministically from the request alone, so a fuzzer can mix
 * every kind of answer containerd may meet through the proxy:
 *
 * - repositories under `private/` answer 401 (with a Bearer challenge) unless
 *   the Authorization is exactly FAKE_GOOD_AUTHORIZATION; under `denied/`, 403;
 * - blobs it holds (see `blobs`) answer 200 (206 for a Range), others 404;
 * - manifests by tag: `latest` and `v1` answer the one manifest it holds;
 *   tags named for trouble answer it: `throttled` 429, `moved` 307, `timeout`
 *   408, `broken` 500, `unreachable` throws UpstreamError (as the real client
 *   does when the registry cannot be reached); any other tag 404;
 * - manifests by digest: the manifest's digest answers 200, others 404.
 *
 * `troubleAnswers` counts the answers that justify a 5xx from the proxy.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { UpstreamError, type Digest } from '@shoal/core';
import type { BlobFetchOptions, RegistryClientApi, RegistryRequest, RegistryResponse } from '@shoal/registry-client';

export const FAKE_GOOD_AUTHORIZATION = 'Bearer fake-good-token';
export const FAKE_MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

function digestOf(bytes: Buffer): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;
}

function answer(statusCode: number, headers: Record<string, string>, body?: Buffer): RegistryResponse {
  return { statusCode, headers, body: Readable.from(body === undefined ? [] : [body]) };
}

export class FakeRegistryClient implements RegistryClientApi {
  /** Blobs it holds, by digest. */
  readonly blobs = new Map<Digest, Buffer>();
  readonly manifest: Buffer;
  readonly manifestDigest: Digest;
  calls = 0;
  troubleAnswers = 0;

  constructor(blobContents: readonly Buffer[]) {
    for (const content of blobContents) this.blobs.set(digestOf(content), content);
    this.manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: FAKE_MANIFEST_TYPE,
        layers: [...this.blobs.entries()].map(([digest, content]) => ({ mediaType: 'application/octet-stream', digest, size: content.length })),
      }),
    );
    this.manifestDigest = digestOf(this.manifest);
  }

  baseUrl(registry: string): string {
    return `https://${registry}`;
  }

  /** The refusal a repository gets for this credential, if any. */
  private refusal(repository: string, authorization: string | undefined): RegistryResponse | undefined {
    if (repository.startsWith('private/') && authorization !== FAKE_GOOD_AUTHORIZATION) {
      return answer(401, { 'www-authenticate': `Bearer realm="https://auth.invalid/token",service="fake",scope="repository:${repository}:pull"`, 'content-type': 'application/json' }, Buffer.from('{"errors":[{"code":"UNAUTHORIZED","message":"fake"}]}'));
    }
    if (repository.startsWith('denied/')) return answer(403, { 'content-type': 'application/json' }, Buffer.from('{"errors":[{"code":"DENIED","message":"fake"}]}'));
    return undefined;
  }

  async request(request: RegistryRequest): Promise<RegistryResponse> {
    this.calls++;
    const m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(request.path);
    if (m === null || m[1] === undefined || m[2] === undefined) return answer(404, {});
    const [, repository, reference] = m;
    const refused = this.refusal(repository, request.authorization);
    if (refused !== undefined) return refused;
    const head = request.method === 'HEAD';
    const manifest = (): RegistryResponse =>
      answer(200, { 'content-type': FAKE_MANIFEST_TYPE, 'content-length': String(this.manifest.length), 'docker-content-digest': this.manifestDigest }, head ? undefined : this.manifest);
    switch (reference) {
      case 'latest':
      case 'v1':
      case this.manifestDigest:
        return manifest();
      case 'throttled':
        this.troubleAnswers++;
        return answer(429, { 'retry-after': '1' });
      case 'moved':
        this.troubleAnswers++;
        return answer(307, { location: 'https://elsewhere.invalid/v2/x' });
      case 'timeout':
        this.troubleAnswers++;
        return answer(408, {});
      case 'broken':
        this.troubleAnswers++;
        return answer(500, { 'content-type': 'application/json' }, head ? undefined : Buffer.from('{"errors":[{"code":"UNKNOWN","message":"fake: broken"}]}'));
      case 'unreachable':
        this.troubleAnswers++;
        throw new UpstreamError('fake registry: unreachable');
      default:
        return answer(404, { 'content-type': 'application/json' }, head ? undefined : Buffer.from('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"fake"}]}'));
    }
  }

  async headBlob(options: BlobFetchOptions): Promise<RegistryResponse> {
    this.calls++;
    const refused = this.refusal(options.repository, options.authorization);
    if (refused !== undefined) return refused;
    const content = this.blobs.get(options.digest);
    if (content === undefined) return answer(404, {});
    return answer(200, { 'content-length': String(content.length), 'docker-content-digest': options.digest, 'content-type': 'application/octet-stream' });
  }

  async getBlob(options: BlobFetchOptions): Promise<RegistryResponse> {
    this.calls++;
    const refused = this.refusal(options.repository, options.authorization);
    if (refused !== undefined) return refused;
    const content = this.blobs.get(options.digest);
    if (content === undefined) return answer(404, {});
    const range = options.range === undefined ? undefined : /^bytes=(\d+)-(\d+)$/.exec(options.range);
    if (range?.[1] !== undefined && range[2] !== undefined) {
      const start = Number(range[1]);
      const end = Math.min(Number(range[2]), content.length - 1);
      return answer(206, { 'content-range': `bytes ${start}-${end}/${content.length}`, 'content-length': String(end - start + 1) }, content.subarray(start, end + 1));
    }
    return answer(200, { 'content-length': String(content.length), 'docker-content-digest': options.digest }, content);
  }

  async close(): Promise<void> {}
}
