import test from 'ava';
import { FakeSwarmRejecting } from './helpers/fake-swarm.js';
import { fetchAll, startProxy } from './helpers/fixture.js';

test('healthz, readyz, /v2/ and Prometheus metrics', async (t) => {
  const proxy = await startProxy({ blobs: new FakeSwarmRejecting(), plainHttpHosts: [] });
  t.teardown(() => proxy.close());

  t.is((await fetchAll(`${proxy.url}/healthz`)).statusCode, 200);
  t.is((await fetchAll(`${proxy.url}/readyz`)).statusCode, 200);
  const ping = await fetchAll(`${proxy.url}/v2/`);
  t.is(ping.statusCode, 200);
  t.is(ping.headers['docker-distribution-api-version'], 'registry/2.0');
  t.is((await fetchAll(`${proxy.url}/v2`)).statusCode, 200);
  t.is((await fetchAll(`${proxy.url}/v2/`, { method: 'HEAD' })).statusCode, 200);

  const metrics = await fetchAll(`${proxy.url}/metrics`);
  t.is(metrics.statusCode, 200);
  t.regex(metrics.headers['content-type'] ?? '', /^text\/plain/);
  const text = metrics.body.toString();
  for (const name of ['shoal_proxy_requests_total', 'shoal_proxy_blob_bytes_total', 'shoal_proxy_fallbacks_total', 'shoal_proxy_request_duration_seconds']) {
    t.true(text.includes(`# TYPE ${name}`), name);
  }
  t.regex(text, /shoal_proxy_requests_total\{kind="ping",method="GET",status="200"\} 2/);
});
