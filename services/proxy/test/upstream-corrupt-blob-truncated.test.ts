import { open } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { FakeSwarmRejecting } from './helpers/fake-swarm.js';
import { blobPath, fetchAll, fetchCounting, startProxy, startUpstream } from './helpers/fixture.js';

test('a blob from the registry that does not match its digest never reaches the client complete', async (t) => {
  const upstream = await startUpstream();
  t.teardown(() => upstream.stop());
  const layer = upstream.image.layers[0];
  if (layer === undefined) throw new Error('image has no layer');
  // Flip one byte in the registry's own storage (same length, wrong digest).
  const hex = layer.digest.slice(7);
  const file = join(upstream.registry.dataDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
  const handle = await open(file, 'r+');
  const byte = Buffer.alloc(1);
  await handle.read(byte, 0, 1, 1000);
  byte[0] = (byte[0] ?? 0) ^ 0xff;
  await handle.write(byte, 0, 1, 1000);
  await handle.close();

  const proxy = await startProxy({ blobs: new FakeSwarmRejecting(), plainHttpHosts: [upstream.registry.host] });
  t.teardown(() => proxy.close());
  const response = await fetchCounting(`${proxy.url}${blobPath(upstream, layer.digest)}`);
  t.is(response.statusCode, 200);
  t.is(response.headers['x-shoal-source'], 'upstream');
  t.false(response.complete, 'the body was cut, not ended');
  t.true(response.received < layer.sizeBytes, `${response.received} of ${layer.sizeBytes} bytes arrived`);
  // A range is not verifiable on its own and passes (containerd verifies the whole blob it assembles).
  const ranged = await fetchAll(`${proxy.url}${blobPath(upstream, layer.digest)}`, { headers: { range: 'bytes=0-99' } });
  t.is(ranged.statusCode, 206);
  t.is((await fetchAll(`${proxy.url}/healthz`)).statusCode, 200);
});
