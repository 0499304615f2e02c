import test from 'ava';
import { digestOf, silentLogger, type Digest } from '@shoal/core';
import { RegistryClient } from '../src/index.js';
import { readAll, startServer } from './helpers.js';

test('getBlob/headBlob: blob path, Range passed, lowercase string headers, empty HEAD body', async (t) => {
  const content = Buffer.from('0123456789');
  const digest = digestOf(content);
  const registry = await startServer((req, res) => {
    res.setHeader('Docker-Content-Digest', digest);
    res.setHeader('X-Multi', ['a', 'b']);
    res.setHeader('Content-Length', content.length);
    if (req.headers.range === 'bytes=4-') {
      res.writeHead(206, { 'Content-Range': `bytes 4-9/10`, 'Content-Length': 6 });
      res.end(req.method === 'HEAD' ? undefined : content.subarray(4));
      return;
    }
    res.end(req.method === 'HEAD' ? undefined : content);
  });
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: [registry.host] });
  t.teardown(async () => {
    await client.close();
    await registry.close();
  });

  const head = await client.headBlob({ registry: registry.host, repository: 'team/app', digest });
  t.is(head.statusCode, 200);
  t.is(head.headers['content-length'], '10');
  t.is(head.headers['docker-content-digest'], digest);
  t.is(head.headers['x-multi'], 'a, b');
  t.is((await readAll(head.body)).length, 0);
  t.is(registry.requests[0]?.method, 'HEAD');
  t.is(registry.requests[0]?.url, `/v2/team/app/blobs/${digest}`);

  const ranged = await client.getBlob({ registry: registry.host, repository: 'team/app', digest, range: 'bytes=4-' });
  t.is(ranged.statusCode, 206);
  t.is(ranged.headers['content-range'], 'bytes 4-9/10');
  t.is((await readAll(ranged.body)).toString(), '456789');

  const whole = await client.getBlob({ registry: registry.host, repository: 'team/app', digest });
  t.deepEqual(await readAll(whole.body), content);
});

test('invalid repository or digest never reaches the network', async (t) => {
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: ['127.0.0.1:1'] });
  t.teardown(() => client.close());
  await t.throwsAsync(client.getBlob({ registry: '127.0.0.1:1', repository: '../etc', digest: digestOf('x') }), { message: /repository/ });
  await t.throwsAsync(client.getBlob({ registry: '127.0.0.1:1', repository: 'a/b', digest: 'sha256:../x' as Digest }), { message: /digest/ });
  await t.throwsAsync(client.request({ registry: '127.0.0.1:1', path: '/v2/../admin', method: 'GET' }), { message: /escapes/ });
});
