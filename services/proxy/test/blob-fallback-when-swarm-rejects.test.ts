import test from 'ava';
import { HEADER, digestOf } from '@shoal/core';
import { FakeSwarmRejecting } from './helpers/fake-swarm.js';
import { blobPath, fetchAll, metricValue, startProxy, startUpstream } from './helpers/fixture.js';

test('when the swarm rejects, the blob comes from the registry marked x-shoal-source: upstream', async (t) => {
  const upstream = await startUpstream();
  t.teardown(() => upstream.stop());
  const swarm = new FakeSwarmRejecting();
  const proxy = await startProxy({ blobs: swarm, plainHttpHosts: [upstream.registry.host] });
  t.teardown(() => proxy.close());
  const layer = upstream.image.layers[0];
  if (layer === undefined) throw new Error('image has no layer');

  const response = await fetchAll(`${proxy.url}${blobPath(upstream, layer.digest)}`);
  t.is(response.statusCode, 200);
  t.is(response.headers[HEADER.source], 'upstream');
  t.is(response.body.length, layer.sizeBytes);
  t.is(digestOf(response.body), layer.digest);
  t.is(swarm.calls.length, 1);
  t.is((await upstream.registry.blobGets()).get(layer.digest), 1);
  t.is(await metricValue(proxy.metrics, 'shoal_proxy_fallbacks_total', { reason: 'swarm_error' }), 1);
  t.is(await metricValue(proxy.metrics, 'shoal_proxy_blob_bytes_total', { source: 'upstream' }), layer.sizeBytes);
});
