import test from 'ava';
import { buildImage, makeTempDir, pushImage, removeTempDir, requireTools, startContainerd, startRegistry } from '../src/index.js';

const credentials = { username: 'shoal', password: 's3cret pass' };

test('an htpasswd registry refuses anonymous clients and accepts skopeo and ctr with credentials', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo', 'htpasswd']);
  const dir = await makeTempDir('htpasswd-test');
  t.teardown(() => removeTempDir(dir));
  const registry = await startRegistry({ htpasswd: credentials });
  t.teardown(() => registry.stop());

  const anonymous = await fetch(`${registry.url}/v2/`);
  await anonymous.arrayBuffer();
  t.is(anonymous.status, 401);
  t.regex(anonymous.headers.get('www-authenticate') ?? '', /^Basic realm=/);
  const authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
  const authed = await fetch(`${registry.url}/v2/`, { headers: { authorization } });
  await authed.arrayBuffer();
  t.is(authed.status, 200);

  await buildImage({ dir, tag: 'private', layers: [{ sizeBytes: 256 * 1024, seed: 'private' }] });
  await t.throwsAsync(pushImage({ layoutDir: dir, tag: 'private', registry: registry.host, repository: 'test/private' }));
  await pushImage({ layoutDir: dir, tag: 'private', registry: registry.host, repository: 'test/private', credentials });

  const ctd = await startContainerd({ name: 'ctd-htpasswd' });
  t.teardown(() => ctd.stop());
  const ref = `${registry.host}/test/private:private`;
  const denied = await ctd.pull(ref, { plainHttp: true, check: false });
  t.not(denied.code, 0);
  t.false(await ctd.imageExists(ref));
  await ctd.pull(ref, { plainHttp: true, user: credentials });
  t.true(await ctd.imageUnpacked(ref));
});
