import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { digestOf, MediaType, parseImageReference } from '@shoal/core';
import { checkProxy, checkTestFetch, formatReport, runDoctorCommand, type CheckResult } from '../src/commands/doctor.js';
import { DoctorFailedError } from '../src/errors.js';

// `shoal doctor`'s network checks against a small stand-in for the proxy on
// port 0 (the real proxy is in e2e/test/doctor.test.ts): what the verdict is
// for each answer a proxy can give, above all `X-Shoal-Source: upstream`,
// which means the swarm is not serving this node although pulls succeed.

const CONFIG = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
const CONFIG_DIGEST = digestOf(CONFIG);
const MANIFEST = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: { mediaType: MediaType.ociConfig, digest: CONFIG_DIGEST, size: CONFIG.length }, layers: [] }));
const MANIFEST_DIGEST = digestOf(MANIFEST);
const INDEX = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      { mediaType: MediaType.ociManifest, digest: digestOf('other'), size: 5, platform: { os: 'linux', architecture: 'arm64' } },
      { mediaType: MediaType.ociManifest, digest: MANIFEST_DIGEST, size: MANIFEST.length, platform: { os: 'linux', architecture: 'amd64' } },
    ],
  }),
);

interface StubOptions {
  ready?: boolean;
  source?: string | undefined;
  blobBytes?: Buffer;
  tagIsIndex?: boolean;
  manifestStatus?: number;
}

/** A stand-in proxy; records the URLs it was asked for. */
async function stubProxy(t: ExecutionContext, options: StubOptions = {}): Promise<{ url: string; requests: string[] }> {
  const requests: string[] = [];
  const send = (res: ServerResponse, status: number, body: Buffer | string, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-length': String(Buffer.byteLength(body)), ...headers }).end(body);
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    requests.push(url);
    const path = url.split('?')[0] ?? '';
    if (path === '/healthz') return send(res, 200, '{"status":"ok"}');
    if (path === '/readyz') return options.ready === false ? send(res, 503, '{"status":"not ready"}') : send(res, 200, '{"status":"ready"}');
    if (path === '/metrics') return send(res, 200, 'shoal_proxy_fallbacks_total{reason="swarm_error"} 3\n');
    if (path === '/v2/team/app/manifests/v1') {
      if (options.manifestStatus !== undefined) return send(res, options.manifestStatus, '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no"}]}');
      return options.tagIsIndex === true ? send(res, 200, INDEX, { 'content-type': MediaType.ociIndex }) : send(res, 200, MANIFEST, { 'content-type': MediaType.ociManifest });
    }
    if (path === `/v2/team/app/manifests/${MANIFEST_DIGEST}`) return send(res, 200, MANIFEST, { 'content-type': MediaType.ociManifest });
    if (path === `/v2/team/app/blobs/${CONFIG_DIGEST}`) {
      return send(res, 200, options.blobBytes ?? CONFIG, options.source === undefined ? {} : { 'x-shoal-source': options.source });
    }
    return send(res, 404, '{"errors":[{"code":"NAME_UNKNOWN"}]}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

const IMAGE = parseImageReference('registry.example:5000/team/app:v1');

test('the proxy up and ready passes both probes', async (t) => {
  const proxy = await stubProxy(t);
  t.deepEqual((await checkProxy(proxy.url)).map((r) => [r.check, r.ok]), [['proxy alive', true], ['proxy ready', true]]);
});

test('a proxy that is not ready fails "proxy ready" and says what /readyz said', async (t) => {
  const proxy = await stubProxy(t, { ready: false });
  const ready = (await checkProxy(proxy.url)).find((r) => r.check === 'proxy ready');
  t.is(ready?.ok, false);
  t.regex(ready?.detail ?? '', /503: not ready/);
});

test('nothing listening fails "proxy alive" (connection refused) and nothing else is probed', async (t) => {
  const proxy = await stubProxy(t);
  const closedUrl = proxy.url.replace(/:\d+$/, ':1');
  const results = await checkProxy(closedUrl);
  t.deepEqual(results.map((r) => [r.check, r.ok]), [['proxy alive', false]]);
  t.regex(results[0]?.detail ?? '', /connection refused/);
});

test('the test fetch passes when the config blob came from the swarm, asking as containerd does (?ns=)', async (t) => {
  const proxy = await stubProxy(t, { source: 'supernode' });
  const r = await checkTestFetch(proxy.url, IMAGE, 'linux/amd64');
  t.is(r.ok, true, r.detail);
  t.regex(r.detail, /came from supernode/);
  t.deepEqual(proxy.requests, [`/v2/team/app/manifests/v1?ns=registry.example%3A5000`, `/v2/team/app/blobs/${CONFIG_DIGEST}?ns=registry.example%3A5000`]);
});

test('the test fetch picks the platform from a multi-arch index', async (t) => {
  const proxy = await stubProxy(t, { source: 'peer', tagIsIndex: true });
  const r = await checkTestFetch(proxy.url, IMAGE, 'linux/amd64');
  t.is(r.ok, true, r.detail);
  t.true(proxy.requests.some((u) => u.startsWith(`/v2/team/app/manifests/${MANIFEST_DIGEST}?`)));
  const none = await checkTestFetch(proxy.url, IMAGE, 'windows/amd64');
  t.false(none.ok);
  t.regex(none.detail, /no manifest for windows\/amd64/);
});

test('X-Shoal-Source: upstream fails: the proxy fell back to the registry; the fix points at logs and fallback metrics', async (t) => {
  const proxy = await stubProxy(t, { source: 'upstream' });
  const r = await checkTestFetch(proxy.url, IMAGE, 'linux/amd64');
  t.false(r.ok);
  t.regex(r.detail, /came from upstream: the proxy fell back to the registry/);
  t.regex(r.detail, /swarm_error=3/);
  t.regex(r.fix ?? '', /shoal_proxy_fallbacks_total/);
});

test('no X-Shoal-Source header fails: that is not a Shoal proxy', async (t) => {
  const proxy = await stubProxy(t, { source: undefined });
  const r = await checkTestFetch(proxy.url, IMAGE, 'linux/amd64');
  t.false(r.ok);
  t.regex(r.detail, /no x-shoal-source header/);
});

test('bytes that do not match the digest fail the test fetch', async (t) => {
  const wrong = Buffer.from(CONFIG);
  wrong[0] = 0x20;
  const proxy = await stubProxy(t, { source: 'peer', blobBytes: wrong });
  const r = await checkTestFetch(proxy.url, IMAGE, 'linux/amd64');
  t.false(r.ok);
  t.regex(r.detail, /hashed to/);
});

test('a manifest the registry does not have, or wants credentials for, fails with a reason', async (t) => {
  const missing = await stubProxy(t, { manifestStatus: 404 });
  t.regex((await checkTestFetch(missing.url, IMAGE, 'linux/amd64')).detail, /not found \(404\)/);
  const auth = await stubProxy(t, { manifestStatus: 401 });
  t.regex((await checkTestFetch(auth.url, IMAGE, 'linux/amd64')).detail, /credentials needed/);
});

test('without --image the test fetch is skipped with a warning that says so', async (t) => {
  const r = await checkTestFetch('http://127.0.0.1:1', undefined, 'linux/amd64');
  t.is(r.ok, 'warn');
  t.regex(r.detail, /^skipped/);
  t.regex(r.fix ?? '', /--image/);
});

test('the report: one line per check with its mark, a fix under each one not passed', (t) => {
  const results: CheckResult[] = [
    { check: 'config_path', ok: true, detail: 'set' },
    { check: 'hosts.toml _default', ok: 'warn', detail: 'after another mirror', fix: 'reorder' },
    { check: 'proxy alive', ok: false, detail: 'refused', fix: 'start it\nthen retry' },
  ];
  t.is(
    formatReport(results),
    [
      '✔ config_path          set',
      '⚠ hosts.toml _default  after another mirror',
      '                       fix: reorder',
      '✘ proxy alive          refused',
      '                       fix: start it',
      '                            then retry',
      '',
      '1 ok, 1 warning(s), 1 failing: fix the ✘ lines above',
      '',
    ].join('\n'),
  );
});

test('the command: JSON on request, and a failed check throws DoctorFailedError (exit code 1)', async (t) => {
  let out = '';
  const flags = { containerdConfig: '/nonexistent/config.toml', certsDir: '/nonexistent/certs.d', proxy: 'http://127.0.0.1:1', platform: 'linux/amd64', json: true };
  const err = await t.throwsAsync(runDoctorCommand(flags, (text) => (out += text)), { instanceOf: DoctorFailedError });
  t.regex(err?.message ?? '', /containerd config, certs dir, proxy alive/);
  const report = JSON.parse(out) as { ok: boolean; results: CheckResult[] };
  t.false(report.ok);
  t.deepEqual(report.results.map((r) => r.check), ['containerd config', 'certs dir', 'proxy alive', 'test fetch']);
});

test('the command rejects a proxy URL with a path, a bad image and a bad platform, all at once', async (t) => {
  const flags = { containerdConfig: '/x', certsDir: '/y', proxy: 'http://127.0.0.1:65001/v2', image: 'UPPER/case', platform: 'linux', json: false };
  const err = await t.throwsAsync(runDoctorCommand(flags, () => undefined));
  t.regex(err?.message ?? '', /--proxy: expected scheme:\/\/host:port only/);
  t.regex(err?.message ?? '', /--image: /);
  t.regex(err?.message ?? '', /--platform: /);
});
