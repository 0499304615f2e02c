import test from 'ava';
import { digestOf, silentLogger } from '@shoal/core';
import { RegistryClient } from '../src/index.js';
import { readAll, startServer } from './helpers.js';

// The token endpoint is external input: a huge body must not be buffered.
test('an oversized token response is refused and the 401 returned', async (t) => {
  const realm = await startServer((_req, res) => {
    // Chunked, so only the byte count can stop it.
    res.setHeader('content-type', 'application/json');
    res.write(`{"token":"${'a'.repeat(40 * 1024)}`);
    res.end(`${'a'.repeat(40 * 1024)}"}`);
  });
  const registry = await startServer((_req, res) => {
    res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm.url}/token",service="s",scope="repository:a/b:pull"` }).end();
  });
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: [registry.host] });
  t.teardown(async () => {
    await client.close();
    await registry.close();
    await realm.close();
  });
  const res = await client.getBlob({ registry: registry.host, repository: 'a/b', digest: digestOf('x') });
  t.is(res.statusCode, 401);
  await readAll(res.body);
  t.is(realm.requests.length, 1);
  t.is(registry.requests.length, 1);
});
