import test from 'ava';
import { HEADER, digestOf } from '@shoal/core';
import { FakeSwarmFromRegistry } from './helpers/fake-swarm.js';
import { blobPath, fetchAll, layoutBlob, metricValue, startProxy, startUpstream } from './helpers/fixture.js';

test('a blob GET is answered from the swarm, marked with x-shoal-source', async (t) => {
  const upstream = await startUpstream();
  t.teardown(() => upstream.stop());
  const swarm = new FakeSwarmFromRegistry(upstream.client, 'peer');
  const proxy = await startProxy({ blobs: swarm, plainHttpHosts: [upstream.registry.host] });
  t.teardown(() => proxy.close());

  const layer = upstream.image.layers[0];
  if (layer === undefined) throw new Error('image has no layer');
  const expected = await layoutBlob(upstream, layer.digest);

  const response = await fetchAll(`${proxy.url}${blobPath(upstream, layer.digest)}`);
  t.is(response.statusCode, 200);
  t.is(response.headers[HEADER.source], 'peer');
  t.is(response.headers['content-length'], String(layer.sizeBytes));
  t.is(response.headers['docker-content-digest'], layer.digest);
  t.is(digestOf(response.body), layer.digest);
  t.true(response.body.equals(expected));

  t.is(swarm.calls.length, 1);
  const call = swarm.calls[0];
  t.is(call?.request.registry, upstream.registry.host);
  t.is(call?.request.repository, upstream.repository);
  t.is(call?.request.sizeBytes, layer.sizeBytes);
  t.is(call?.range, undefined);
  t.is(await metricValue(proxy.metrics, 'shoal_proxy_blob_bytes_total', { source: 'peer' }), layer.sizeBytes);
});
