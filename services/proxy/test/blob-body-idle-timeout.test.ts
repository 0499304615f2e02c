import test from 'ava';
import { FakeSwarmTroubleMidStream } from './helpers/fake-swarm.js';
import { blobPath, fetchAll, layoutBlob, startProxy, startUpstream } from './helpers/fixture.js';

test('a body that goes silent is cut after the idle timeout instead of stalling', async (t) => {
  const upstream = await startUpstream();
  t.teardown(() => upstream.stop());
  const layer = upstream.image.layers[0];
  if (layer === undefined) throw new Error('image has no layer');
  const content = await layoutBlob(upstream, layer.digest);
  const swarm = new FakeSwarmTroubleMidStream(content, 50_000, 'stall');
  const proxy = await startProxy({ blobs: swarm, plainHttpHosts: [upstream.registry.host], init: { bodyIdleTimeoutMs: 300 } });
  t.teardown(() => proxy.close());

  const started = Date.now();
  await t.throwsAsync(fetchAll(`${proxy.url}${blobPath(upstream, layer.digest)}`));
  const elapsed = Date.now() - started;
  t.true(elapsed < 5_000, `cut after ${elapsed} ms`);
  t.true(swarm.calls[0]?.signal?.aborted);
});
