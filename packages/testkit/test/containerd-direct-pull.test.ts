import test from 'ava';
import { buildImage, makeTempDir, pushImage, removeTempDir, requireTools, servedBlobs, startContainerd, startRegistry } from '../src/index.js';

test('containerd pulls and unpacks straight from the registry; a second instance runs side by side', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const dir = await makeTempDir('direct-pull-test');
  t.teardown(() => removeTempDir(dir));
  const registry = await startRegistry();
  t.teardown(() => registry.stop());
  const [a, b] = await Promise.all([startContainerd({ name: 'ctd-a' }), startContainerd({ name: 'ctd-b' })]);
  t.teardown(() => a.stop());
  t.teardown(() => b.stop());
  t.not(a.socket, b.socket);
  t.not(a.root, b.root);

  const image = await buildImage({ dir, tag: 'v1', layers: [{ sizeBytes: 2 * 1024 * 1024, seed: 'ctd-1' }, { sizeBytes: 1024 * 1024, seed: 'ctd-2' }] });
  await pushImage({ layoutDir: dir, tag: 'v1', registry: registry.host, repository: 'test/app' });
  const ref = `${registry.host}/test/app:v1`;

  const pull = await a.pull(ref, { plainHttp: true, debug: true });
  t.true(await a.imageExists(ref));
  t.true(await a.imageUnpacked(ref));
  t.false(await b.imageExists(ref));
  const content = await a.contentDigests();
  for (const layer of image.layers) t.true(content.has(layer.digest), layer.digest);
  t.true(content.has(image.configDigest));

  // The debug log shows who served each blob.
  const served = servedBlobs(pull.requests());
  for (const layer of image.layers) {
    const request = served.get(layer.digest);
    t.is(request?.host, registry.host);
    t.is(request?.status, 200);
    t.is(request?.headers?.['docker-content-digest'], layer.digest);
  }
  t.true(pull.requests().some((r) => r.method === 'HEAD' && r.url.endsWith('/v2/test/app/manifests/v1') && r.status === 200));

  // The second instance fetches on its own (content only, as bench:swarm --fetch-only), then
  // unpacks what it has: the registry serves every layer twice in all.
  const fetched = await b.ctr(['content', 'fetch', '--plain-http', ref]);
  t.is(fetched.code, 0, fetched.stderr);
  t.true(await b.imageComplete(ref));
  t.false(await b.imageUnpacked(ref));
  await b.pull(ref, { plainHttp: true });
  t.true(await b.imageUnpacked(ref));
  const gets = await registry.blobGets();
  for (const layer of image.layers) t.is(gets.get(layer.digest), 2);
});
