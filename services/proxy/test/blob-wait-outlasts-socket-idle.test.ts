// Waits that are the swarm's, not the client's, are bounded by progress, not
// by the client socket's idle timer: a blob whose start takes longer than that
// timer (queued at the supernode behind its registry's other fetches), or a
// body that waits that long for its next piece, while the swarm reports
// progress all along. With the timer running, containerd's requests were cut
// after 120 s: it fetched such blobs from the registry, or resumed with Range.
import test from 'ava';
import { HEADER, digestOf } from '@shoal/core';
import { FakeSwarmPausing, FakeSwarmQueued } from './helpers/fake-swarm.js';
import { blobPath, fetchAll, layoutBlob, metricValue, startProxy, startUpstream } from './helpers/fixture.js';

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

test('a body that waits for its next piece longer than the socket idle timeout, while the swarm moves, is not cut', async (t) => {
  const upstream = await startUpstream();
  t.teardown(() => upstream.stop());
  const layer = upstream.image.layers[0];
  if (layer === undefined) throw new Error('image has no layer');
  const content = await layoutBlob(upstream, layer.digest);
  const swarm = new FakeSwarmPausing(content, Math.floor(content.length / 2), 3 * SOCKET_IDLE_MS);
  const proxy = await startProxy({ blobs: swarm, plainHttpHosts: [upstream.registry.host], init: { serverTimeouts: { socketIdleMs: SOCKET_IDLE_MS } } });
  t.teardown(() => proxy.close());

  const response = await fetchAll(`${proxy.url}${blobPath(upstream, layer.digest)}`);
  t.is(response.statusCode, 200);
  t.is(response.headers[HEADER.source], 'peer');
  t.is(digestOf(response.body), layer.digest, 'the whole body, uncut');
});
