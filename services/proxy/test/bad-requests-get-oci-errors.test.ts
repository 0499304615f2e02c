import test from 'ava';
import { FakeSwarmRejecting } from './helpers/fake-swarm.js';
import { fetchAll, startProxy } from './helpers/fixture.js';

interface OciBody {
  errors: Array<{ code: string; message: string }>;
}

const NS = '?ns=127.0.0.1%3A5000';
const GOOD_DIGEST = `sha256:${'a'.repeat(64)}`;

test('bad names, digests, routes and methods get OCI errors, and the server keeps answering', async (t) => {
  // No request here reaches the registry: the port in ns is never contacted.
  const proxy = await startProxy({ blobs: new FakeSwarmRejecting(), plainHttpHosts: ['127.0.0.1:5000'] });
  t.teardown(() => proxy.close());

  const cases: Array<{ path: string; method?: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE'; status: number; code?: string }> = [
    { path: `/v2/test/app/blobs/sha256:zz${NS}`, status: 400, code: 'DIGEST_INVALID' },
    { path: `/v2/test/app/blobs/md5:abc${NS}`, status: 400, code: 'DIGEST_INVALID' },
    { path: `/v2/test/app/manifests/sha256:${'A'.repeat(64)}${NS}`, status: 400, code: 'DIGEST_INVALID' },
    { path: `/v2/Test/App/blobs/${GOOD_DIGEST}${NS}`, status: 400, code: 'NAME_INVALID' },
    { path: `/v2/test/app/manifests/bad%tag${NS}`, status: 400, code: 'NAME_INVALID' },
    { path: `/v2/test/app/manifests/${'x'.repeat(200)}${NS}`, status: 400, code: 'NAME_INVALID' },
    { path: `/v2/${'a/'.repeat(200)}b/blobs/${GOOD_DIGEST}${NS}`, status: 400, code: 'NAME_INVALID' },
    { path: `/v2/test/app/blobs/${GOOD_DIGEST}?ns=bad%20host`, status: 400, code: 'NAME_INVALID' },
    { path: `/v2/test/app/blobs/${GOOD_DIGEST}`, status: 404, code: 'NAME_UNKNOWN' },
    { path: `/v2/test/app/tags/list${NS}`, status: 404, code: 'NAME_UNKNOWN' },
    { path: '/v2/_catalog', status: 404, code: 'NAME_UNKNOWN' },
    { path: '/nothing/here', status: 404, code: 'NAME_UNKNOWN' },
    { path: `/v2/test/app/blobs/uploads/${NS}`, method: 'POST', status: 405, code: 'UNSUPPORTED' },
    { path: `/v2/test/app/manifests/v1${NS}`, method: 'PUT', status: 405, code: 'UNSUPPORTED' },
    { path: `/v2/test/app/manifests/v1${NS}`, method: 'DELETE', status: 405, code: 'UNSUPPORTED' },
  ];
  for (const c of cases) {
    const response = await fetchAll(`${proxy.url}${c.path}`, { method: c.method ?? 'GET', headers: c.method === 'POST' ? { 'content-type': 'application/json' } : {} });
    t.is(response.statusCode, c.status, `${c.method ?? 'GET'} ${c.path.slice(0, 80)}`);
    const body = JSON.parse(response.body.toString()) as OciBody;
    t.is(body.errors[0]?.code, c.code, c.path.slice(0, 80));
    t.is(typeof body.errors[0]?.message, 'string');
  }

  const noNs = await fetchAll(`${proxy.url}/v2/test/app/manifests/v1`);
  t.regex((JSON.parse(noNs.body.toString()) as OciBody).errors[0]?.message ?? '', /mirror.*\?ns=/);

  const ping = await fetchAll(`${proxy.url}/v2/`);
  t.is(ping.statusCode, 200);
  t.deepEqual(JSON.parse(ping.body.toString()), {});
  t.is((await fetchAll(`${proxy.url}/healthz`)).statusCode, 200);
});
