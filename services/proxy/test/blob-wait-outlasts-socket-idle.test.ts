// A blob whose swarm start takes longer than the proxy's socket idle timeout,
// while the swarm reports progress all along (a blob queued at the supernode
// behind its registry's other fetches), is still served from the swarm: the
// wait for the first byte is bounded by progress, not by the socket's idle
// timer. With the timer running, containerd's request was cut after 120 s of
// waiting for headers and containerd fetched the blob from the registry itself.
import test from 'ava';
import { HEADER, digestOf } from '@shoal/core';
import { FakeSwarmQueued } from './helpers/fake-swarm.js';
import { blobPath, fetchAll, metricValue, startProxy, startUpstream } from './helpers/fixture.js';

/** Longer than the proxy's 1 s progress check, which re-arms it. */
const SOCKET_IDLE_MS = 1_500;

test('a first-byte wait that shows progress outlasts the socket idle timeout', async (t) => {
  const upstream = await startUpstream();
  t.teardown(() => upstream.stop());
  const swarm = new FakeSwarmQueued(upstream.client, 3 * SOCKET_IDLE_MS);
  const proxy = await startProxy({ blobs: swarm, plainHttpHosts: [upstream.registry.host], init: { firstByteTimeoutMs: 1_000, serverTimeouts: { socketIdleMs: SOCKET_IDLE_MS } } });
  t.teardown(() => proxy.close());
  const layer = upstream.image.layers[0];
  if (layer === undefined) throw new Error('image has no layer');

  const startedAt = Date.now();
  const response = await fetchAll(`${proxy.url}${blobPath(upstream, layer.digest)}`);
  t.true(Date.now() - startedAt >= 3 * SOCKET_IDLE_MS, 'the swarm took its time');
  t.is(response.statusCode, 200);
  t.is(response.headers[HEADER.source], 'peer');
  t.is(digestOf(response.body), layer.digest);
  t.is(await metricValue(proxy.metrics, 'shoal_proxy_fallbacks_total', { reason: 'first_byte_timeout' }), 0);
});
