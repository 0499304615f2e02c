import test from 'ava';
import { digestOf, silentLogger } from '@shoal/core';
import { RegistryClient } from '../src/index.js';
import { basic, CountingAgent, readAll, startServer } from './helpers.js';

// Credentials must not travel in clear text to a realm the operator never declared plain-HTTP.
test('Basic credentials are not sent to a plain-http realm that is neither loopback nor declared', async (t) => {
  const registry = await startServer((_req, res) => {
    res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://auth.example.invalid/token",service="s",scope="repository:a/b:pull"' }).end();
  });
  const agent = new CountingAgent();
  const client = new RegistryClient({ log: silentLogger(), dispatcher: agent }, { plainHttpHosts: [registry.host] });
  t.teardown(async () => {
    await client.close();
    await agent.close();
    await registry.close();
  });
  const res = await client.getBlob({ registry: registry.host, repository: 'a/b', digest: digestOf('x'), authorization: basic('u', 'p') });
  t.is(res.statusCode, 401);
  await readAll(res.body);
  // Only the registry request itself went out: no token request at all.
  t.is(agent.dispatched, 1);
});
