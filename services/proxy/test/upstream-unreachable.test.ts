import test from 'ava';
import { MANIFEST_ACCEPT, digestOf } from '@shoal/core';
import { deadPort } from '@shoal/testkit';
import { FakeSwarmRejecting } from './helpers/fake-swarm.js';
import { fetchAll, startProxy } from './helpers/fixture.js';

test('an unreachable registry gives 502 OCI errors quickly, so containerd moves on', async (t) => {
  const port = await deadPort();
  const host = `127.0.0.1:${port}`;
  const proxy = await startProxy({ blobs: new FakeSwarmRejecting(), plainHttpHosts: [host] });
  t.teardown(() => proxy.close());
  const ns = `?ns=${encodeURIComponent(host)}`;

  const paths = [
    `/v2/test/app/manifests/v1${ns}`,
    `/v2/test/app/manifests/${digestOf('m')}${ns}`,
    `/v2/test/app/blobs/${digestOf('b')}${ns}`,
  ];
  for (const path of paths) {
    for (const method of ['GET', 'HEAD'] as const) {
      const started = Date.now();
      const response = await fetchAll(`${proxy.url}${path}`, { method, headers: { accept: MANIFEST_ACCEPT } });
      t.true(response.statusCode === 502 || response.statusCode === 503 || response.statusCode === 504, `${method} ${path}: ${response.statusCode}`);
      t.true(Date.now() - started < 10_000);
      if (method === 'GET') t.is(typeof (JSON.parse(response.body.toString()) as { errors: unknown[] }).errors[0], 'object');
    }
  }
});
