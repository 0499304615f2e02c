// A peer that was told a wrong size for a blob (a broken proxy, a registry
// whose HEAD and GET disagree) does not fail the supernode's fetch, which
// every peer asking for the blob shares: the registry's length stands. Only a
// size that let a large blob past its registry's fetch slots as a small one
// stops the fetch.
import test from 'ava';
import { digestOf, UpstreamError } from '@shoal/core';
import { blobTasksFor, startTricklingRegistry } from './helpers/trickling-registry.js';

const MiB = 1024 * 1024;

test('a wrong size from a peer: the blob is fetched at the registry’s length; a false small size for a large blob is refused', async (t) => {
  const layer = Buffer.alloc(3 * MiB + 11, 5);
  const layerDigest = digestOf(layer);
  const registry = await startTricklingRegistry({ byteEveryMs: 200, quick: new Map([[layerDigest, layer]]) });
  t.teardown(() => registry.close());
  const { tasks, store } = await blobTasksFor(t, [registry.host]);
  const repository = 'app/size';

  const info = await tasks.ensure({ digest: layerDigest, registry: registry.host, repository, sizeBytes: layer.length + 7 }, undefined);
  t.is(info.sizeBytes, layer.length, 'the registry’s length');
  await store.waitForComplete(layerDigest, { signal: AbortSignal.timeout(10_000) });
  t.true(store.get(layerDigest)?.complete);

  // The slow answer is 4 MiB long: told 1 KiB, it would have skipped its registry's slots.
  const refused = await t.throwsAsync(tasks.ensure({ digest: digestOf('a large layer'), registry: registry.host, repository, sizeBytes: 1024 }, undefined));
  t.true(refused instanceof UpstreamError, String(refused));
  t.regex(refused?.message ?? '', /has 4194304 bytes, the peer was told 1024/);
});
