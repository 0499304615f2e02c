import { createHash } from 'node:crypto';
import test from 'ava';
import { digestOf, silentLogger } from '@shoal/core';
import { buildImage, makeTempDir, pushImage, removeTempDir, requireTools, startRegistry } from '@shoal/testkit';
import { RegistryClient } from '../src/index.js';
import { basic, readAll } from './helpers.js';

// Against distribution 2.8 itself (Debian's docker-registry): the behaviour our fakes assume.

test('blobs from a real registry: bytes hash to the digest, HEAD sizes, 404 passed through', async (t) => {
  await requireTools(['docker-registry', 'skopeo']);
  const dir = await makeTempDir('registry-client-real');
  t.teardown(() => removeTempDir(dir));
  const registry = await startRegistry();
  t.teardown(() => registry.stop());
  const image = await buildImage({ dir, tag: 'v1', layers: [{ sizeBytes: 300_000, seed: 'registry-client-real' }] });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: 'test/app' });
  const layer = image.layers[0];
  if (layer === undefined) throw new Error('image has no layer');

  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: [registry.host] });
  t.teardown(() => client.close());

  const got = await client.getBlob({ registry: registry.host, repository: 'test/app', digest: layer.digest });
  t.is(got.statusCode, 200);
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of got.body) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  t.is(`sha256:${hash.digest('hex')}`, layer.digest);
  t.is(bytes, layer.sizeBytes);

  const head = await client.headBlob({ registry: registry.host, repository: 'test/app', digest: layer.digest });
  t.is(head.statusCode, 200);
  t.is(head.headers['content-length'], String(layer.sizeBytes));
  t.is(head.headers['docker-content-digest'], layer.digest);
  t.is((await readAll(head.body)).length, 0);

  const ranged = await client.getBlob({ registry: registry.host, repository: 'test/app', digest: layer.digest, range: 'bytes=10-19' });
  t.is(ranged.statusCode, 206);
  t.is((await readAll(ranged.body)).length, 10);

  const missing = await client.getBlob({ registry: registry.host, repository: 'test/app', digest: digestOf('never pushed') });
  t.is(missing.statusCode, 404);
  t.regex((await readAll(missing.body)).toString(), /BLOB_UNKNOWN/);
});

test('htpasswd registry: 401 with a Basic challenge without credentials, 200 with them', async (t) => {
  await requireTools(['docker-registry', 'skopeo', 'htpasswd']);
  const creds = { username: 'alice', password: 'pull-secret' };
  const dir = await makeTempDir('registry-client-real-auth');
  t.teardown(() => removeTempDir(dir));
  const registry = await startRegistry({ htpasswd: creds });
  t.teardown(() => registry.stop());
  const image = await buildImage({ dir, tag: 'v1', layers: [{ sizeBytes: 50_000, seed: 'registry-client-auth' }] });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: 'private/app', credentials: creds });
  const layer = image.layers[0];
  if (layer === undefined) throw new Error('image has no layer');

  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: [registry.host] });
  t.teardown(() => client.close());

  const anonymous = await client.getBlob({ registry: registry.host, repository: 'private/app', digest: layer.digest });
  t.is(anonymous.statusCode, 401);
  t.regex(anonymous.headers['www-authenticate'] ?? '', /^Basic realm="shoal-testkit"/);
  await readAll(anonymous.body);

  const wrong = await client.getBlob({ registry: registry.host, repository: 'private/app', digest: layer.digest, authorization: basic('alice', 'nope') });
  t.is(wrong.statusCode, 401);
  await readAll(wrong.body);

  const authed = await client.getBlob({ registry: registry.host, repository: 'private/app', digest: layer.digest, authorization: basic(creds.username, creds.password) });
  t.is(authed.statusCode, 200);
  t.is(digestOf(await readAll(authed.body)), layer.digest);
});
