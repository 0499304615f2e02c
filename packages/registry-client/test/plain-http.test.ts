import test from 'ava';
import { silentLogger } from '@shoal/core';
import { RegistryClient } from '../src/index.js';
import { readAll, startServer } from './helpers.js';

test('baseUrl: https unless host:port is declared plain-HTTP', async (t) => {
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: ['127.0.0.1:5000', 'Registry.Local:5001', 'legacy'.concat(':80')] });
  t.teardown(() => client.close());
  t.is(client.baseUrl('127.0.0.1:5000'), 'http://127.0.0.1:5000');
  t.is(client.baseUrl('127.0.0.1:5001'), 'https://127.0.0.1:5001');
  t.is(client.baseUrl('registry.local:5001'), 'http://registry.local:5001');
  t.is(client.baseUrl('ghcr.io'), 'https://ghcr.io');
  t.is(client.baseUrl('docker.io'), 'https://registry-1.docker.io');
  // `host:80` in the list covers the bare host.
  t.is(client.baseUrl('legacy'), 'http://legacy');
  t.throws(() => client.baseUrl('evil.com/@x'));
});

test('requests go over plain HTTP to a declared host', async (t) => {
  const registry = await startServer((req, res) => res.end(`${req.method} ${req.url}`));
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: [registry.host] });
  t.teardown(async () => {
    await client.close();
    await registry.close();
  });
  const res = await client.request({ registry: registry.host, path: '/v2/', method: 'GET' });
  t.is(res.statusCode, 200);
  t.is((await readAll(res.body)).toString(), 'GET /v2/');
});
