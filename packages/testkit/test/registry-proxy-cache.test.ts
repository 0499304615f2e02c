import test from 'ava';
import { buildImage, makeTempDir, pushImage, registryHasBlob, removeTempDir, requireTools, servedBlobs, startContainerd, startRegistry } from '../src/index.js';

test('a registry with proxyRemoteUrl is a pull-through cache of another one', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const dir = await makeTempDir('proxy-cache-test');
  t.teardown(() => removeTempDir(dir));
  const upstream = await startRegistry();
  t.teardown(() => upstream.stop());
  const cache = await startRegistry({ proxyRemoteUrl: upstream.url });
  t.teardown(() => cache.stop());
  const image = await buildImage({ dir, tag: 'v1', layers: [{ sizeBytes: 512 * 1024, seed: 'cache' }] });
  await pushImage({ layoutDir: dir, tag: 'v1', registry: upstream.host, repository: 'test/cached' });

  const ctd = await startContainerd({ name: 'ctd-cache' });
  t.teardown(() => ctd.stop());
  const pull = await ctd.pull(`${cache.host}/test/cached:v1`, { plainHttp: true, debug: true });
  const layer = image.layers[0];
  if (layer === undefined) throw new Error('no layer');
  t.is(servedBlobs(pull.requests()).get(layer.digest)?.host, cache.host);
  t.is((await cache.blobGets()).get(layer.digest), 1);
  t.true((await upstream.blobGets()).has(layer.digest));
  // The cache stores the blob in the background once it has streamed it.
  for (let i = 0; i < 50 && !(await registryHasBlob(cache.dataDir, layer.digest)); i++) await new Promise((r) => setTimeout(r, 100));
  t.true(await registryHasBlob(cache.dataDir, layer.digest));
});
