import test from 'ava';
import { digestOf, silentLogger, UpstreamError } from '@shoal/core';
import { RegistryClient } from '../src/index.js';
import { startServer } from './helpers.js';

test('no response headers in time: retried, then UpstreamError 504', async (t) => {
  // Never answers.
  const registry = await startServer(() => {});
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: [registry.host], headersTimeoutMs: 100, maxRetries: 1, retryBaseMs: 1 });
  t.teardown(async () => {
    await client.close();
    await registry.close();
  });
  const err = await t.throwsAsync(client.getBlob({ registry: registry.host, repository: 'a/b', digest: digestOf('x') }), { instanceOf: UpstreamError });
  t.is(err?.statusCode, 504);
  t.is((err?.cause as { code?: string } | undefined)?.code, 'UND_ERR_HEADERS_TIMEOUT');
  t.is(registry.requests.length, 2);
});
