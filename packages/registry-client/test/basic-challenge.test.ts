import test from 'ava';
import { digestOf, silentLogger } from '@shoal/core';
import { RegistryClient } from '../src/index.js';
import { basic, readAll, startServer } from './helpers.js';

// A registry with a Basic challenge gets the caller's header as is; its 401 comes back untouched.
test('a Basic challenge is returned to the caller, nothing else is tried', async (t) => {
  const registry = await startServer((req, res) => {
    if (req.headers.authorization === basic('bob', 'pw')) {
      res.end('ok');
      return;
    }
    res.writeHead(401, { 'www-authenticate': 'Basic realm="Registry Realm"' }).end('{}');
  });
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: [registry.host] });
  t.teardown(async () => {
    await client.close();
    await registry.close();
  });
  const digest = digestOf('x');

  const anonymous = await client.getBlob({ registry: registry.host, repository: 'a/b', digest });
  t.is(anonymous.statusCode, 401);
  t.is(anonymous.headers['www-authenticate'], 'Basic realm="Registry Realm"');
  await readAll(anonymous.body);
  t.is(registry.requests.length, 1);

  const withCreds = await client.getBlob({ registry: registry.host, repository: 'a/b', digest, authorization: basic('bob', 'pw') });
  t.is(withCreds.statusCode, 200);
  t.is((await readAll(withCreds.body)).toString(), 'ok');
  t.is(registry.requests.at(-1)?.headers.authorization, basic('bob', 'pw'));
});
