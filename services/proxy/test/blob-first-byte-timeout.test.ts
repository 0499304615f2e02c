import test from 'ava';
import { HEADER, digestOf } from '@shoal/core';
import { FakeSwarmNeverAnswering } from './helpers/fake-swarm.js';
import { blobPath, fetchAll, metricValue, startProxy, startUpstream } from './helpers/fixture.js';

test('a swarm that sends nothing within the first-byte timeout is abandoned for the registry', async (t) => {
  const upstream = await startUpstream();
  t.teardown(() => upstream.stop());
  const swarm = new FakeSwarmNeverAnswering();
  const proxy = await startProxy({ blobs: swarm, plainHttpHosts: [upstream.registry.host], init: { firstByteTimeoutMs: 300 } });
  t.teardown(() => proxy.close());
  const layer = upstream.image.layers[0];
  if (layer === undefined) throw new Error('image has no layer');

  const started = Date.now();
  const response = await fetchAll(`${proxy.url}${blobPath(upstream, layer.digest)}`);
  t.true(Date.now() - started < 5_000);
  t.is(response.statusCode, 200);
  t.is(response.headers[HEADER.source], 'upstream');
  t.is(digestOf(response.body), layer.digest);
  t.true(swarm.calls[0]?.signal?.aborted, 'the swarm request was aborted');
  t.is(await metricValue(proxy.metrics, 'shoal_proxy_fallbacks_total', { reason: 'first_byte_timeout' }), 1);
});
