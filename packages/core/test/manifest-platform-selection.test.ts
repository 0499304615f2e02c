/**
 * Which manifests of an index the manifest layer picks for platforms (what a
 * preheat warms and a pull fetches; "multi-arch indexes unsupported in
 * preheat" is a known complaint about other systems), and how an index or
 * manifest body is read. Pure functions, no I/O.
 */
import test from 'ava';
import {
  digestOf,
  MAX_BLOB_SIZE_BYTES,
  ManifestUnsupportedError,
  MediaType,
  normalizePlatform,
  parseManifest,
  PlatformUnknownError,
  selectManifests,
  UpstreamError,
  type Descriptor,
  type Digest,
  type Platform,
} from '../src/index.js';

const REF = 'registry.test/app:v1';

function entry(platform: Platform | undefined, annotations: Record<string, string> = {}, digest?: Digest): Descriptor {
  const key = platform === undefined ? 'none' : `${platform.os}/${platform.architecture}/${platform.variant ?? ''}/${JSON.stringify(annotations)}`;
  return { mediaType: MediaType.ociManifest, digest: digest ?? digestOf(key), sizeBytes: 500, platform, annotations, hasUrls: false };
}

const amd64 = entry({ os: 'linux', architecture: 'amd64' });
const arm64 = entry({ os: 'linux', architecture: 'arm64', variant: 'v8' });
const armV7 = entry({ os: 'linux', architecture: 'arm', variant: 'v7' });
const armV6 = entry({ os: 'linux', architecture: 'arm', variant: 'v6' });
const windows = entry({ os: 'windows', architecture: 'amd64' });
// What buildx writes next to each image: platform unknown/unknown and a reference-type annotation.
const attestation = entry({ os: 'unknown', architecture: 'unknown' }, { 'vnd.docker.reference.type': 'attestation-manifest' });
const bareUnknown = entry({ os: 'unknown', architecture: 'unknown' });
const annotatedOnly = entry({ os: 'linux', architecture: 'amd64' }, { 'vnd.docker.reference.type': 'attestation-manifest' });
const INDEX = [amd64, attestation, arm64, armV7, armV6, windows, bareUnknown, annotatedOnly];

const p = (text: string): Platform => {
  const [os = '', architecture = '', variant] = text.split('/');
  return { os, architecture, variant };
};

test('without platforms: every manifest of the index except attestations', (t) => {
  t.deepEqual(selectManifests(INDEX, undefined, REF), [amd64, arm64, armV7, armV6, windows]);
});

test('one platform: only its manifest', (t) => {
  t.deepEqual(selectManifests(INDEX, [p('linux/amd64')], REF), [amd64]);
  t.deepEqual(selectManifests(INDEX, [p('windows/amd64')], REF), [windows]);
});

test('several platforms: their manifests, in index order, each once', (t) => {
  t.deepEqual(selectManifests(INDEX, [p('linux/arm64'), p('linux/amd64'), p('linux/amd64')], REF), [amd64, arm64]);
});

test("variants follow containerd's normal form: arm64 is arm64/v8, a bare arm is arm/v7", (t) => {
  t.deepEqual(selectManifests(INDEX, [p('linux/arm64')], REF), [arm64]);
  t.deepEqual(selectManifests([entry({ os: 'linux', architecture: 'arm64' })], [p('linux/arm64/v8')], REF).length, 1);
  t.deepEqual(selectManifests(INDEX, [p('linux/arm')], REF), [armV7]);
  t.deepEqual(selectManifests(INDEX, [p('linux/arm/v6')], REF), [armV6]);
  t.deepEqual(normalizePlatform({ os: 'linux', architecture: 'aarch64' }), { os: 'linux', architecture: 'arm64' });
  t.deepEqual(normalizePlatform({ os: 'linux', architecture: 'x86_64' }), { os: 'linux', architecture: 'amd64' });
});

test('a platform not in the index is an error that lists what the index has', (t) => {
  const err = t.throws(() => selectManifests(INDEX, [p('linux/amd64'), p('linux/s390x')], REF), { instanceOf: PlatformUnknownError });
  t.is(err?.message, `no manifest for platform linux/s390x in ${REF} (the index has linux/amd64, linux/arm64/v8, linux/arm/v7, linux/arm/v6, windows/amd64)`);
  t.is(err?.statusCode, 404);
  t.throws(() => selectManifests(INDEX, [p('linux/arm/v5')], REF), { instanceOf: PlatformUnknownError });
});

test('an entry without a platform is taken by default and matches any platform, as containerd does', (t) => {
  const plain = entry(undefined);
  t.deepEqual(selectManifests([plain, arm64], undefined, REF), [plain, arm64]);
  t.deepEqual(selectManifests([plain, arm64], [p('linux/riscv64')], REF), [plain]);
});

test('the same manifest listed twice is warmed once', (t) => {
  const twice = entry({ os: 'linux', architecture: 'amd64', variant: 'v2' }, {}, amd64.digest);
  t.deepEqual(selectManifests([amd64, twice], undefined, REF), [amd64]);
});

const DIGEST_A = digestOf('a');
const DIGEST_B = digestOf('b');

test('an index is recognised by its mediaType, its Content-Type, or its shape', (t) => {
  const manifests = [{ mediaType: MediaType.ociManifest, digest: DIGEST_A, size: 10, platform: { os: 'linux', architecture: 'amd64' } }];
  const withType = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.dockerManifestList, manifests })), undefined, REF);
  t.is(withType.kind, 'index');
  const byHeader = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, manifests })), `${MediaType.ociIndex}; charset=utf-8`, REF);
  t.is(byHeader.kind, 'index');
  const byShape = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, manifests })), 'application/json', REF);
  t.is(byShape.kind, 'index');
  if (byShape.kind === 'index') t.deepEqual(byShape.manifests[0]?.platform, { os: 'linux', architecture: 'amd64', variant: undefined });
});

test('a manifest gives its config and layers', (t) => {
  const body = {
    schemaVersion: 2,
    config: { mediaType: MediaType.dockerConfig, digest: DIGEST_A, size: 10 },
    layers: [{ mediaType: MediaType.dockerLayerGzip, digest: DIGEST_B, size: 20 }],
  };
  const parsed = parseManifest(Buffer.from(JSON.stringify(body)), MediaType.dockerManifest, REF);
  t.is(parsed.kind, 'manifest');
  if (parsed.kind !== 'manifest') return;
  t.is(parsed.config.digest, DIGEST_A);
  t.deepEqual(parsed.layers.map((l) => [l.digest, l.sizeBytes]), [[DIGEST_B, 20]]);
  t.false(parsed.layers[0]?.hasUrls);
});

test('a foreign layer, fetched from the URLs it lists, is marked so', (t) => {
  const body = {
    schemaVersion: 2,
    config: { digest: DIGEST_A, size: 10 },
    layers: [
      { mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: DIGEST_B, size: 20, urls: ['https://example.invalid/layer'] },
      { digest: DIGEST_A, size: 10, urls: [] },
    ],
  };
  const parsed = parseManifest(Buffer.from(JSON.stringify(body)), MediaType.dockerManifest, REF);
  if (parsed.kind !== 'manifest') return t.fail('expected a manifest');
  t.deepEqual(parsed.layers.map((l) => l.hasUrls), [true, false]);
  t.false(parsed.config.hasUrls);
});

test('a layer larger than the swarm carries is still part of the manifest; a size past exact JSON integers is not', (t) => {
  const manifest = (size: number): Buffer =>
    Buffer.from(JSON.stringify({ schemaVersion: 2, config: { digest: DIGEST_A, size: 10 }, layers: [{ digest: DIGEST_B, size }] }));
  for (const size of [MAX_BLOB_SIZE_BYTES + 1, Number.MAX_SAFE_INTEGER]) {
    const parsed = parseManifest(manifest(size), MediaType.ociManifest, REF);
    t.is(parsed.kind === 'manifest' ? parsed.layers[0]?.sizeBytes : undefined, size);
  }
  t.throws(() => parseManifest(manifest(Number.MAX_SAFE_INTEGER + 1), MediaType.ociManifest, REF), { instanceOf: UpstreamError, message: /invalid size/ });
});

test('schema 1, garbage and invalid descriptors are refused with a reason', (t) => {
  const schema1 = { schemaVersion: 1, mediaType: 'application/vnd.docker.distribution.manifest.v1+prettyjws', fsLayers: [] };
  t.throws(() => parseManifest(Buffer.from(JSON.stringify(schema1)), undefined, REF), { instanceOf: ManifestUnsupportedError, message: /unsupported manifest type/ });
  t.throws(() => parseManifest(Buffer.from('<html>'), 'text/html', REF), { instanceOf: UpstreamError, message: /not a JSON object/ });
  const badDigest = { mediaType: MediaType.ociIndex, manifests: [{ digest: 'sha256:../../etc', size: 1 }] };
  t.throws(() => parseManifest(Buffer.from(JSON.stringify(badDigest)), undefined, REF), { instanceOf: UpstreamError, message: /valid sha256 digest/ });
  const badSize = { mediaType: MediaType.ociManifest, config: { digest: DIGEST_A, size: -1 }, layers: [] };
  t.throws(() => parseManifest(Buffer.from(JSON.stringify(badSize)), undefined, REF), { instanceOf: UpstreamError, message: /invalid size/ });
});
