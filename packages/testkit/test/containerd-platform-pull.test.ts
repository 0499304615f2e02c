import test from 'ava';
import { buildImage, makeTempDir, pushImage, removeTempDir, requireTools, startContainerd, startRegistry } from '../src/index.js';

test('containerd pulls one platform of a multi-platform index', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const dir = await makeTempDir('platform-pull-test');
  t.teardown(() => removeTempDir(dir));
  const registry = await startRegistry();
  t.teardown(() => registry.stop());
  const ctd = await startContainerd({ name: 'ctd-platform' });
  t.teardown(() => ctd.stop());

  const image = await buildImage({
    dir,
    tag: 'multi',
    layers: [{ sizeBytes: 300_000, seed: 'plat' }],
    platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }],
  });
  await pushImage({ layoutDir: dir, tag: 'multi', registry: registry.host, repository: 'test/multi' });
  const ref = `${registry.host}/test/multi:multi`;
  await ctd.pull(ref, { plainHttp: true, platform: 'linux/arm64' });

  const content = await ctd.contentDigests();
  const [amd64, arm64] = image.platforms;
  t.true(content.has(image.indexDigest ?? image.digest));
  t.true(content.has(arm64?.layers[0]?.digest ?? image.digest));
  t.false(content.has(amd64?.layers[0]?.digest ?? image.digest));
  t.true(await ctd.imageExists(ref));
});
