import test from 'ava';
import { digestOf } from '@shoal/core';
import { FakeSwarmFromRegistry } from './helpers/fake-swarm.js';
import { blobPath, fetchAll, startProxy, startUpstream } from './helpers/fixture.js';

test('a blob the registry does not have is 404 BLOB_UNKNOWN, for GET and HEAD', async (t) => {
  const upstream = await startUpstream();
  t.teardown(() => upstream.stop());
  const swarm = new FakeSwarmFromRegistry(upstream.client);
  const proxy = await startProxy({ blobs: swarm, plainHttpHosts: [upstream.registry.host] });
  t.teardown(() => proxy.close());
  const missing = digestOf('no such blob');

  const got = await fetchAll(`${proxy.url}${blobPath(upstream, missing)}`);
  t.is(got.statusCode, 404);
  t.is((JSON.parse(got.body.toString()) as { errors: Array<{ code: string }> }).errors[0]?.code, 'BLOB_UNKNOWN');
  const head = await fetchAll(`${proxy.url}${blobPath(upstream, missing)}`, { method: 'HEAD' });
  t.is(head.statusCode, 404);
  t.is(swarm.calls.length, 0);
});
