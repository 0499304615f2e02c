import { createHash } from 'node:crypto';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { HEADER, MAX_BLOB_SIZE_BYTES, parseDigest, type Digest } from '@shoal/core';
import { FakeSwarmRejecting } from './helpers/fake-swarm.js';
import { blobPath, fetchAll, metricValue, startProxy, startUpstream, type Upstream } from './helpers/fixture.js';

/**
 * Puts a blob of `sizeBytes` zeros into the real registry's storage as a sparse
 * file, linked into the upstream's repository. Its name is not the hash of its
 * bytes (hashing 64 GiB would take minutes): the registry serves it anyway, and
 * these requests read only a range of it, which no digest check covers.
 */
async function sparseBlob(upstream: Upstream, sizeBytes: number): Promise<Digest> {
  const hex = createHash('sha256').update(`sparse ${sizeBytes}`).digest('hex');
  const v2 = join(upstream.registry.dataDir, 'docker', 'registry', 'v2');
  const blobDir = join(v2, 'blobs', 'sha256', hex.slice(0, 2), hex);
  await mkdir(blobDir, { recursive: true });
  const file = await open(join(blobDir, 'data'), 'w');
  await file.truncate(sizeBytes);
  await file.close();
  const linkDir = join(v2, 'repositories', upstream.repository, '_layers', 'sha256', hex);
  await mkdir(linkDir, { recursive: true });
  await writeFile(join(linkDir, 'link'), `sha256:${hex}`);
  return parseDigest(`sha256:${hex}`);
}

test('a blob larger than the swarm carries goes to the registry without asking the swarm, counted as too_large', async (t) => {
  const upstream = await startUpstream();
  t.teardown(() => upstream.stop());
  const swarm = new FakeSwarmRejecting();
  const proxy = await startProxy({ blobs: swarm, plainHttpHosts: [upstream.registry.host] });
  t.teardown(() => proxy.close());
  const size = MAX_BLOB_SIZE_BYTES + 1024 * 1024;
  const digest = await sparseBlob(upstream, size);

  const head = await fetchAll(`${proxy.url}${blobPath(upstream, digest)}`, { method: 'HEAD' });
  t.is(head.statusCode, 200);
  t.is(head.headers['content-length'], String(size));

  const start = MAX_BLOB_SIZE_BYTES - 4096;
  const end = start + 65_535;
  const response = await fetchAll(`${proxy.url}${blobPath(upstream, digest)}`, { headers: { range: `bytes=${start}-${end}` } });
  t.is(response.statusCode, 206);
  t.is(response.headers['content-range'], `bytes ${start}-${end}/${size}`);
  t.is(response.headers[HEADER.source], 'upstream');
  t.true(response.body.equals(Buffer.alloc(end - start + 1)));
  t.is(swarm.calls.length, 0, 'the swarm is not asked for a blob it cannot carry');
  t.is(await metricValue(proxy.metrics, 'shoal_proxy_fallbacks_total', { reason: 'too_large' }), 1);
  t.is(await metricValue(proxy.metrics, 'shoal_proxy_fallbacks_total', { reason: 'swarm_error' }), 0);
});

test('a blob of exactly the largest size the swarm carries is still offered to it', async (t) => {
  const upstream = await startUpstream();
  t.teardown(() => upstream.stop());
  const swarm = new FakeSwarmRejecting();
  const proxy = await startProxy({ blobs: swarm, plainHttpHosts: [upstream.registry.host] });
  t.teardown(() => proxy.close());
  const digest = await sparseBlob(upstream, MAX_BLOB_SIZE_BYTES);

  const response = await fetchAll(`${proxy.url}${blobPath(upstream, digest)}`, { headers: { range: 'bytes=0-1023' } });
  t.is(response.statusCode, 206);
  t.is(response.headers[HEADER.source], 'upstream');
  t.is(response.body.length, 1024);
  t.is(swarm.calls.length, 1);
  t.is(await metricValue(proxy.metrics, 'shoal_proxy_fallbacks_total', { reason: 'swarm_error' }), 1);
  t.is(await metricValue(proxy.metrics, 'shoal_proxy_fallbacks_total', { reason: 'too_large' }), 0);
});
