import test from 'ava';
import { MANIFEST_ACCEPT, digestOf } from '@shoal/core';
import { startFakePeer } from './helpers/fake-peer.js';
import { FakeSwarmRejecting } from './helpers/fake-swarm.js';
import { fetchAll, startProxy } from './helpers/fixture.js';

// containerd retries 408/429 on the same host; a rate-limited registry must
// instead make it move on, so the proxy never answers them.
test('a registry answering 429 (or 408) becomes 503 TOOMANYREQUESTS, never a 429', async (t) => {
  let status = 429;
  // A FAKE registry that only rate-limits (a real docker-registry never does).
  const registry = await startFakePeer((_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json', 'retry-after': '0' });
    res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}');
  });
  t.teardown(() => registry.close());
  const host = new URL(registry.url).host;
  const proxy = await startProxy({ blobs: new FakeSwarmRejecting(), plainHttpHosts: [host] });
  t.teardown(() => proxy.close());
  const ns = `?ns=${encodeURIComponent(host)}`;

  for (const s of [429, 408]) {
    status = s;
    for (const path of [`/v2/a/b/manifests/latest${ns}`, `/v2/a/b/manifests/${digestOf('m')}${ns}`, `/v2/a/b/blobs/${digestOf(String(s))}${ns}`]) {
      const response = await fetchAll(`${proxy.url}${path}`, { headers: { accept: MANIFEST_ACCEPT } });
      t.is(response.statusCode, 503, `${s} ${path}`);
      const code = (JSON.parse(response.body.toString()) as { errors: Array<{ code: string }> }).errors[0]?.code;
      if (s === 429) t.is(code, 'TOOMANYREQUESTS');
    }
  }
});
