import test from 'ava';
import { HEADER } from '@shoal/core';
import { requireTools, servedBlobs, startContainerd, writeHostsToml } from '@shoal/testkit';
import { FakeSwarmFromRegistry } from './helpers/fake-swarm.js';
import { startProxy, startUpstream } from './helpers/fixture.js';

// containerd falls back to `server` silently on any error from a mirror, so a
// pull that works proves nothing: every blob must be seen coming from the proxy.
test('ctr images pull --user from an htpasswd registry goes through the proxy (hosts.toml mirror)', async (t) => {
  await requireTools(['containerd', 'ctr']);
  const credentials = { username: 'puller', password: 'secret-1' };
  const upstream = await startUpstream({
    htpasswd: credentials,
    layers: [
      { sizeBytes: 1024 * 1024, seed: 'ctr-proxy-1' },
      { sizeBytes: 200_000, seed: 'ctr-proxy-2' },
    ],
  });
  t.teardown(() => upstream.stop());
  const swarm = new FakeSwarmFromRegistry(upstream.client, 'peer');
  const proxy = await startProxy({ blobs: swarm, plainHttpHosts: [upstream.registry.host] });
  t.teardown(() => proxy.close());
  const containerd = await startContainerd({ name: 'ctd-proxy' });
  t.teardown(() => containerd.stop());
  await writeHostsToml(containerd.hostsDir, {
    registry: upstream.registry.host,
    server: upstream.registry.url,
    mirrors: [{ url: proxy.url, capabilities: ['pull', 'resolve'] }],
  });
  const ref = `${upstream.registry.host}/${upstream.repository}:${upstream.tag}`;

  const pull = await containerd.pull(ref, { user: credentials, debug: true });
  t.true(await containerd.imageUnpacked(ref));
  const proxyHost = new URL(proxy.url).host;
  const served = servedBlobs(pull.requests());
  for (const layer of upstream.image.layers) {
    const request = served.get(layer.digest);
    t.is(request?.host, proxyHost, `layer ${layer.digest} came from ${request?.host ?? 'nowhere'}`);
    t.is(request?.headers?.[HEADER.source], 'peer');
  }
  t.is(served.get(upstream.image.configDigest)?.host, proxyHost);
  // Tag resolution went through the proxy too, after the Basic challenge.
  t.true(pull.requests().some((r) => r.host === proxyHost && r.method === 'HEAD' && r.status === 200 && r.url.includes('/manifests/')));
  t.true(pull.requests().some((r) => r.host === proxyHost && r.status === 401));
  t.false(pull.requests().some((r) => r.host === upstream.registry.host), 'containerd never had to fall back to the registry');
  t.true(swarm.calls.every((c) => c.request.registryAuthorization?.startsWith('Basic ') === true));
});
