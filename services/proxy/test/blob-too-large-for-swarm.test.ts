import test from 'ava';
import { HEADER, MAX_BLOB_SIZE_BYTES, type Digest } from '@shoal/core';
import { placeSparseBlob } from '@shoal/testkit';
import { FakeSwarmRejecting } from './helpers/fake-swarm.js';
import { blobPath, fetchAll, metricValue, startProxy, startUpstream, type Upstream } from './helpers/fixture.js';

/** A sparse blob of `sizeBytes` in the upstream's real registry, linked into its repository. */
function sparseBlob(upstream: Upstream, sizeBytes: number): Promise<Digest> {
  return placeSparseBlob(upstream.registry.dataDir, upstream.repository, sizeBytes, `sparse ${sizeBytes}`);
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
