import test from 'ava';
import {
  DigestInvalidError,
  NameInvalidError,
  RouteNotFoundError,
  parseImageReference,
  parseRegistryHost,
  parseRegistryPath,
  type Digest,
} from '../src/index.js';

const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}` as Digest;

test('parseRegistryPath: ping', (t) => {
  t.deepEqual(parseRegistryPath('/v2/'), { kind: 'ping' });
  t.deepEqual(parseRegistryPath('/v2'), { kind: 'ping' });
});

test('parseRegistryPath: manifests by tag and by digest', (t) => {
  t.deepEqual(parseRegistryPath('/v2/library/alpine/manifests/3.19'), {
    kind: 'manifest',
    repository: 'library/alpine',
    reference: '3.19',
    digest: undefined,
  });
  t.deepEqual(parseRegistryPath(`/v2/library/alpine/manifests/${DIGEST}`), {
    kind: 'manifest',
    repository: 'library/alpine',
    reference: DIGEST,
    digest: DIGEST,
  });
  t.deepEqual(parseRegistryPath(`/v2/library/alpine/manifests/${encodeURIComponent(DIGEST)}`), {
    kind: 'manifest',
    repository: 'library/alpine',
    reference: DIGEST,
    digest: DIGEST,
  });
});

test('parseRegistryPath: blobs, nested repositories, and repositories named like route words', (t) => {
  t.deepEqual(parseRegistryPath(`/v2/x/blobs/${DIGEST}`), { kind: 'blob', repository: 'x', digest: DIGEST });
  t.deepEqual(parseRegistryPath(`/v2/team/group/sub/app/blobs/${DIGEST}`), { kind: 'blob', repository: 'team/group/sub/app', digest: DIGEST });
  t.deepEqual(parseRegistryPath(`/v2/foo/blobs/blobs/${DIGEST}`), { kind: 'blob', repository: 'foo/blobs', digest: DIGEST });
  t.deepEqual(parseRegistryPath(`/v2/foo/manifests/blobs/${DIGEST}`), { kind: 'blob', repository: 'foo/manifests', digest: DIGEST });
  t.like(parseRegistryPath('/v2/foo/blobs/manifests/latest'), { kind: 'manifest', repository: 'foo/blobs', reference: 'latest' });
  t.like(parseRegistryPath('/v2/my-org/my_app.v2/manifests/v1.0-rc_1'), { kind: 'manifest', repository: 'my-org/my_app.v2', reference: 'v1.0-rc_1' });
});

test('parseRegistryPath: bad repository names and tags throw NameInvalidError', (t) => {
  for (const path of [
    '/v2/Library/alpine/manifests/latest',
    '/v2/../etc/manifests/latest',
    '/v2/a//b/manifests/latest',
    '/v2/-a/manifests/latest',
    '/v2/a-/blobs/' + DIGEST,
    `/v2/${'a'.repeat(256)}/manifests/latest`,
    '/v2/x/manifests/-tag',
    '/v2/x/manifests/.tag',
    `/v2/x/manifests/${'t'.repeat(129)}`,
  ]) {
    t.throws(() => parseRegistryPath(path), { instanceOf: NameInvalidError }, path.slice(0, 60));
  }
});

test('parseRegistryPath: bad digests and other algorithms throw DigestInvalidError', (t) => {
  t.throws(() => parseRegistryPath('/v2/x/blobs/sha256:abc'), { instanceOf: DigestInvalidError });
  t.throws(() => parseRegistryPath('/v2/x/blobs/not-a-digest'), { instanceOf: DigestInvalidError });
  t.throws(() => parseRegistryPath(`/v2/x/blobs/${DIGEST.toUpperCase()}`), { instanceOf: DigestInvalidError });
  t.throws(() => parseRegistryPath('/v2/x/manifests/sha256:zz'), { instanceOf: DigestInvalidError });
  t.throws(() => parseRegistryPath(`/v2/x/blobs/sha512:${'a'.repeat(128)}`), { instanceOf: DigestInvalidError, message: /not supported/ });
  t.throws(() => parseRegistryPath(`/v2/x/manifests/sha512:${'a'.repeat(128)}`), { instanceOf: DigestInvalidError, message: /not supported/ });
});

// Regression: malformed percent-encoding made decodeURIComponent throw a bare URIError,
// which the edge would have answered with a 500 instead of a typed 400.
test('parseRegistryPath: malformed percent-encoding throws a typed error, not URIError', (t) => {
  t.throws(() => parseRegistryPath('/v2/x/blobs/%E0%A4%A'), { instanceOf: DigestInvalidError });
  t.throws(() => parseRegistryPath('/v2/x/manifests/%zz'), { instanceOf: NameInvalidError });
});

test('parseRegistryPath: other paths throw RouteNotFoundError', (t) => {
  for (const path of ['/', '/v1/x/manifests/latest', '/v2/x/tags/list', '/v2/_catalog', '/v2x/blobs/' + DIGEST]) {
    t.throws(() => parseRegistryPath(path), { instanceOf: RouteNotFoundError }, path);
  }
});

test('parseImageReference: short Docker Hub names', (t) => {
  t.deepEqual(parseImageReference('alpine'), {
    registry: 'registry-1.docker.io',
    registryName: 'docker.io',
    repository: 'library/alpine',
    tag: 'latest',
    digest: undefined,
  });
  t.like(parseImageReference('bitnami/redis:7.2'), { registry: 'registry-1.docker.io', repository: 'bitnami/redis', tag: '7.2' });
});

test('parseImageReference: docker.io/library/alpine:3', (t) => {
  t.deepEqual(parseImageReference('docker.io/library/alpine:3'), {
    registry: 'registry-1.docker.io',
    registryName: 'docker.io',
    repository: 'library/alpine',
    tag: '3',
    digest: undefined,
  });
  t.like(parseImageReference('docker.io/alpine'), { repository: 'library/alpine', tag: 'latest' });
});

// Regression: index.docker.io is Docker Hub too, so its official images live under library/.
test('parseImageReference: index.docker.io gets the library/ prefix like docker.io', (t) => {
  t.like(parseImageReference('index.docker.io/alpine:3'), {
    registry: 'registry-1.docker.io',
    registryName: 'docker.io',
    repository: 'library/alpine',
    tag: '3',
  });
});

test('parseImageReference: a registry with a port', (t) => {
  t.deepEqual(parseImageReference('127.0.0.1:5000/test/app:v1'), {
    registry: '127.0.0.1:5000',
    registryName: '127.0.0.1:5000',
    repository: 'test/app',
    tag: 'v1',
    digest: undefined,
  });
  t.like(parseImageReference('localhost:5000/app'), { registry: 'localhost:5000', repository: 'app', tag: 'latest' });
});

test('parseImageReference: by digest', (t) => {
  t.deepEqual(parseImageReference(`localhost/x@${DIGEST}`), {
    registry: 'localhost',
    registryName: 'localhost',
    repository: 'x',
    tag: undefined,
    digest: DIGEST,
  });
  t.like(parseImageReference(`ghcr.io/o/app:v2@${DIGEST}`), { registry: 'ghcr.io', repository: 'o/app', tag: 'v2', digest: DIGEST });
});

test('parseImageReference: invalid references', (t) => {
  t.throws(() => parseImageReference('Alpine'), { instanceOf: NameInvalidError });
  t.throws(() => parseImageReference(''), { instanceOf: NameInvalidError });
  t.throws(() => parseImageReference('alpine:'), { instanceOf: NameInvalidError });
  t.throws(() => parseImageReference('alpine@sha256:abc'), { instanceOf: DigestInvalidError });
});

test('parseRegistryHost: docker.io maps to registry-1.docker.io; hosts are validated', (t) => {
  t.is(parseRegistryHost('docker.io'), 'registry-1.docker.io');
  t.is(parseRegistryHost('Docker.IO'), 'registry-1.docker.io');
  t.is(parseRegistryHost('index.docker.io'), 'registry-1.docker.io');
  t.is(parseRegistryHost('GHCR.io'), 'ghcr.io');
  t.is(parseRegistryHost('localhost:5000'), 'localhost:5000');
  t.is(parseRegistryHost('[::1]:5000'), '[::1]:5000');
  for (const bad of ['', 'host:0', 'host:65536', 'user@host', 'host/path', 'host:', '-host', 'a b']) {
    t.throws(() => parseRegistryHost(bad), { instanceOf: NameInvalidError }, bad);
  }
});
