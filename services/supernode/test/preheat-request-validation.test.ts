/**
 * The preheat API's edge: every malformed request gets a 4xx with a message
 * that says what is wrong, before anything is asked of the registry; an
 * image the registry does not have gets its 404 back as a clear error.
 * A real supernode app (real PieceStore in a temp dir) in front of a FAKE
 * registry client holding one multi-arch image.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { Value } from '@sinclair/typebox/value';
import { API_PREFIX, digestOf, HEADER, MediaType, PreheatJobSchema, silentLogger, type Digest } from '@shoal/core';
import type { BlobFetchOptions, RegistryClientApi, RegistryRequest, RegistryResponse } from '@shoal/registry-client';
import { PieceStore } from '@shoal/store';
import { buildSupernodeApp } from '../src/index.js';

const REGISTRY = 'registry.test:5000';
const TOKEN = 'preheat-validation-token-0123456789';
const CREDENTIAL = 'Basic dXNlcjpzM2NyZXQ=';

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

/** One image, test/app:v1, an OCI index of linux/amd64, linux/arm64 and an attestation. */
function multiArchImage(): { manifests: Map<string, { body: Buffer; type: string }>; blobs: Map<Digest, Buffer> } {
  const blobs = new Map<Digest, Buffer>();
  const manifests = new Map<string, { body: Buffer; type: string }>();
  const entries = [];
  for (const [os, architecture] of [['linux', 'amd64'], ['linux', 'arm64'], ['unknown', 'unknown']] as const) {
    const config = json({ os, architecture });
    const layer = Buffer.from(`layer of ${os}/${architecture}`);
    blobs.set(digestOf(config), config);
    blobs.set(digestOf(layer), layer);
    const manifest = json({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: digestOf(config), size: config.length },
      layers: [{ mediaType: MediaType.ociLayerGzip, digest: digestOf(layer), size: layer.length }],
    });
    manifests.set(`/v2/test/app/manifests/${digestOf(manifest)}`, { body: manifest, type: MediaType.ociManifest });
    entries.push({ mediaType: MediaType.ociManifest, digest: digestOf(manifest), size: manifest.length, platform: { os, architecture } });
  }
  manifests.set('/v2/test/app/manifests/v1', { body: json({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: entries }), type: MediaType.ociIndex });
  return { manifests, blobs };
}

/** A FAKE registry: the image above; 404 for anything else; 401 for `test/private` unless it gets CREDENTIAL. */
class FakeRegistry implements RegistryClientApi {
  readonly image = multiArchImage();
  readonly requests: Array<{ path: string; authorization: string | undefined }> = [];

  baseUrl(registry: string): string {
    return `https://${registry}`;
  }

  async request(r: RegistryRequest): Promise<RegistryResponse> {
    this.requests.push({ path: r.path, authorization: r.authorization });
    if (r.path.startsWith('/v2/test/private/') && r.authorization !== CREDENTIAL) return { statusCode: 401, headers: {}, body: Readable.from([]) };
    const found = this.image.manifests.get(r.path.replace('/test/private/', '/test/app/'));
    if (found === undefined) return { statusCode: 404, headers: {}, body: Readable.from([json({ errors: [{ code: 'MANIFEST_UNKNOWN' }] })]) };
    return { statusCode: 200, headers: { 'content-type': found.type, 'content-length': String(found.body.length) }, body: Readable.from([found.body]) };
  }

  async getBlob(o: BlobFetchOptions): Promise<RegistryResponse> {
    this.requests.push({ path: `/v2/${o.repository}/blobs/${o.digest}`, authorization: o.authorization });
    const content = this.image.blobs.get(o.digest);
    if (content === undefined) return { statusCode: 404, headers: {}, body: Readable.from([]) };
    return { statusCode: 200, headers: { 'content-length': String(content.length) }, body: Readable.from([content]) };
  }

  async headBlob(o: BlobFetchOptions): Promise<RegistryResponse> {
    return this.getBlob(o);
  }

  async close(): Promise<void> {}
}

async function setUp(t: ExecutionContext) {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-preheat-validation-'));
  const log = silentLogger();
  const store = await PieceStore.open({ log }, { dir });
  const registry = new FakeRegistry();
  const { app } = await buildSupernodeApp({ log, store, registry }, { token: TOKEN });
  t.teardown(async () => {
    await app.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const post = async (payload: unknown, headers: Record<string, string> = {}) => {
    const res = await app.inject({
      method: 'POST',
      url: `${API_PREFIX}/preheat`,
      headers: { 'content-type': 'application/json', [HEADER.token]: TOKEN, ...headers },
      payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    });
    return { status: res.statusCode, body: res.json<{ code?: string; message?: string } & Record<string, unknown>>() };
  };
  return { app, registry, post };
}

test('requests that do not parse get a 400 naming the problem, and the registry is never asked', async (t) => {
  const { registry, post } = await setUp(t);
  const cases: Array<[unknown, RegExp]> = [
    [{}, /image/],
    ['not json', /JSON|json/],
    [[`${REGISTRY}/test/app:v1`], /object/i],
    [{ image: '' }, /image/],
    [{ image: `${REGISTRY}/test/app:v1`, extra: true }, /extra|additional/i],
    [{ image: `${REGISTRY}/test/app:v1`, platforms: [] }, /platforms/],
    [{ image: `${REGISTRY}/test/app:v1`, platforms: ['linux'] }, /platforms\/0/],
    [{ image: `${REGISTRY}/test/app:v1`, platforms: ['Linux/AMD64'] }, /platforms\/0/],
    [{ image: `${REGISTRY}/test/app:v1`, platforms: ['linux/arm/v7/x'] }, /platforms\/0/],
    [{ image: `${REGISTRY}/test/app:v1`, platforms: 'linux/amd64' }, /platforms/],
    [{ image: `${REGISTRY}/Test/App:v1` }, /invalid repository name/],
    [{ image: `${REGISTRY}/test/app:-bad` }, /invalid tag/],
    [{ image: `${REGISTRY}/test/app@sha256:1234` }, /invalid digest/],
    [{ image: `${REGISTRY}/test/app@md5:${'0'.repeat(32)}` }, /sha256 only/],
    [{ image: 'http://registry.test/app:v1' }, /invalid/],
  ];
  for (const [payload, message] of cases) {
    const { status, body } = await post(payload);
    t.is(status, 400, `${JSON.stringify(payload)} → ${JSON.stringify(body)}`);
    t.regex(body.message ?? '', message, JSON.stringify(payload));
  }
  t.deepEqual(registry.requests, []);
});

test('without the cluster token the preheat API answers 401', async (t) => {
  const { app, post } = await setUp(t);
  const res = await app.inject({ method: 'POST', url: `${API_PREFIX}/preheat`, headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ image: `${REGISTRY}/test/app:v1` }) });
  t.is(res.statusCode, 401);
  const wrong = await post({ image: `${REGISTRY}/test/app:v1` }, { [HEADER.token]: 'not-the-token-at-all-0123456789' });
  t.is(wrong.status, 401);
  const status = await app.inject({ method: 'GET', url: `${API_PREFIX}/preheat/00000000-0000-4000-8000-000000000000` });
  t.is(status.statusCode, 401);
});

test("an unknown tag gets the registry's 404 as a clear error, and no job", async (t) => {
  const { post } = await setUp(t);
  const { status, body } = await post({ image: `${REGISTRY}/test/app:missing` });
  t.is(status, 404);
  t.is(body.code, 'SHOAL_MANIFEST_UNKNOWN');
  t.regex(body.message ?? '', /manifest unknown: registry\.test:5000\/test\/app:missing \(the registry answered 404\)/);
});

test('a platform the index does not have gets a 404 listing the platforms it has (attestations left out)', async (t) => {
  const { post } = await setUp(t);
  const { status, body } = await post({ image: `${REGISTRY}/test/app:v1`, platforms: ['linux/amd64', 'linux/s390x'] });
  t.is(status, 404);
  t.is(body.code, 'SHOAL_PLATFORM_UNKNOWN');
  t.is(body.message, `no manifest for platform linux/s390x in ${REGISTRY}/test/app:v1 (the index has linux/amd64, linux/arm64)`);
});

test('a private image: refused without credentials (403, says none were given), accepted with the client\'s, which reach the registry and nothing else', async (t) => {
  const { app, registry, post } = await setUp(t);
  const denied = await post({ image: `${REGISTRY}/test/private:v1` });
  t.is(denied.status, 403);
  t.is(denied.body.code, 'SHOAL_UPSTREAM_DENIED');
  t.regex(denied.body.message ?? '', /registry answered 401 for manifest registry\.test:5000\/test\/private:v1 \(no registry credentials were given\)/);

  const accepted = await post({ image: `${REGISTRY}/test/private:v1`, platforms: ['linux/arm64'] }, { [HEADER.registryAuthorization]: CREDENTIAL });
  t.is(accepted.status, 202, JSON.stringify(accepted.body));
  const id = String(accepted.body.id);
  let job = accepted.body;
  for (let i = 0; i < 100 && job.state === 'running'; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    job = (await app.inject({ method: 'GET', url: `${API_PREFIX}/preheat/${id}`, headers: { [HEADER.token]: TOKEN } })).json();
  }
  t.is(job.state, 'done', JSON.stringify(job));
  const blobRequests = registry.requests.filter((r) => r.path.startsWith('/v2/test/private/blobs/'));
  t.is(blobRequests.length, 2, 'config and layer of linux/arm64');
  t.true(blobRequests.every((r) => r.authorization === CREDENTIAL), 'blob fetches carry the client credential');
  t.false(JSON.stringify(job).includes(CREDENTIAL.slice(6)), 'the credential is not in the job status');
});

test('a job is answered 202 with its blobs, and its status validates against the wire schema', async (t) => {
  const { app, post } = await setUp(t);
  const { status, body } = await post({ image: `${REGISTRY}/test/app:v1` });
  t.is(status, 202);
  t.true(Value.Check(PreheatJobSchema, body), JSON.stringify([...Value.Errors(PreheatJobSchema, body)].slice(0, 3)));
  t.deepEqual(body.platforms, ['linux/amd64', 'linux/arm64'], 'every platform but the attestation');
  t.is((body.blobs as unknown[]).length, 4);
  const res = await app.inject({ method: 'GET', url: `${API_PREFIX}/preheat/${String(body.id)}`, headers: { [HEADER.token]: TOKEN } });
  t.is(res.statusCode, 200);
  t.true(Value.Check(PreheatJobSchema, res.json()));
});

test('job ids that are not UUIDs get 400; unknown ones 404', async (t) => {
  const { app } = await setUp(t);
  const bad = await app.inject({ method: 'GET', url: `${API_PREFIX}/preheat/..%2f..%2fetc`, headers: { [HEADER.token]: TOKEN } });
  t.is(bad.statusCode, 400);
  t.regex(bad.json<{ message: string }>().message, /invalid preheat job id/);
  const unknown = await app.inject({ method: 'GET', url: `${API_PREFIX}/preheat/00000000-0000-4000-8000-000000000000`, headers: { [HEADER.token]: TOKEN } });
  t.is(unknown.statusCode, 404);
  t.is(unknown.json<{ code: string }>().code, 'SHOAL_PREHEAT_JOB_UNKNOWN');
});
