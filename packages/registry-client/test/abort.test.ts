import test from 'ava';
import { digestOf, silentLogger } from '@shoal/core';
import { RegistryClient } from '../src/index.js';
import { startServer } from './helpers.js';

test('an abort while the registry has not answered rejects at once with the signal reason', async (t) => {
  const registry = await startServer(() => {});
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: [registry.host] });
  t.teardown(async () => {
    await client.close();
    await registry.close();
  });
  const reason = new Error('gone');
  const started = Date.now();
  // AbortSignal.timeout's reason is a DOMException, which ava's throwsAsync does not take for an error.
  const err: unknown = await client.getBlob({ registry: registry.host, repository: 'a/b', digest: digestOf('x'), signal: AbortSignal.timeout(100) }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.is((err as { name?: string } | undefined)?.name, 'TimeoutError');
  t.true(Date.now() - started < 2000);

  const controller = new AbortController();
  setTimeout(() => controller.abort(reason), 50);
  await t.throwsAsync(client.request({ registry: registry.host, path: '/v2/', method: 'HEAD', signal: controller.signal }), { is: reason });
});
