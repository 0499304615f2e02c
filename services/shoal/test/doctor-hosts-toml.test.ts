import { mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { writeContainerdConfig } from '../src/commands/containerd-config.js';
import type { CheckResult } from '../src/commands/check-result.js';
import { checkHostsToml, judgeHostsToml } from '../src/commands/doctor-hosts-toml.js';

// `shoal doctor`'s hosts.toml checks against real files. The reference of a
// correct file is what `shoal containerd-config` writes; every failure below
// is one containerd 1.6.20 was seen to handle silently (the whole file
// ignored, or the mirror skipped), so pulls bypass Shoal without a word.

const PROXY = 'http://127.0.0.1:65001';
const REWRITE = 'shoal containerd-config ...';

async function certsDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-doctor-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'certs.d');
}

async function writeHosts(dir: string, registry: string, text: string): Promise<void> {
  await mkdir(join(dir, registry), { recursive: true });
  await writeFile(join(dir, registry, 'hosts.toml'), text);
}

function result(t: ExecutionContext, results: readonly CheckResult[], name: string): CheckResult {
  const found = results.find((r) => r.check === name);
  if (found === undefined) t.fail(`no "${name}" result in ${JSON.stringify(results, null, 2)}`);
  return found as CheckResult;
}

test('the files `shoal containerd-config` writes pass, per registry and _default', async (t) => {
  const dir = await certsDir(t);
  await writeContainerdConfig({ certsDir: dir, proxyUrl: PROXY, registries: ['docker.io', 'ghcr.io'], plainHttpHosts: ['127.0.0.1:5000'] });
  const results = await checkHostsToml({ certsDir: dir, proxyUrl: PROXY, registryName: '127.0.0.1:5000' });
  t.deepEqual(results.map((r) => [r.check, r.ok]), [
    ['hosts.toml 127.0.0.1:5000', true],
    ['hosts.toml _default', true],
    ['hosts.toml docker.io', true],
    ['hosts.toml ghcr.io', true],
    ['hosts.toml for 127.0.0.1:5000', true],
  ]);
  t.regex(result(t, results, 'hosts.toml docker.io').detail, /mirror http:\/\/127\.0\.0\.1:65001 \(pull, resolve\), then https:\/\/registry-1\.docker\.io/);
});

test('a missing certs dir fails "certs dir" with the command that writes it', async (t) => {
  const dir = await certsDir(t);
  const results = await checkHostsToml({ certsDir: dir, proxyUrl: PROXY });
  t.deepEqual(results.map((r) => [r.check, r.ok]), [['certs dir', false]]);
  t.is(results[0]?.fix, `shoal containerd-config --certs-dir ${dir} --proxy ${PROXY}`);
});

test('a certs dir without any hosts.toml fails', async (t) => {
  const dir = await certsDir(t);
  await mkdir(dir, { recursive: true });
  const results = await checkHostsToml({ certsDir: dir, proxyUrl: PROXY });
  t.false(result(t, results, 'hosts.toml').ok);
});

test('an unparseable hosts.toml fails with its line: containerd would ignore the whole file', async (t) => {
  const dir = await certsDir(t);
  await writeHosts(dir, '_default', '[host."http://127.0.0.1:65001"]\n  capabilities = ["pull", "resolve"\n');
  const r = result(t, await checkHostsToml({ certsDir: dir, proxyUrl: PROXY }), 'hosts.toml _default');
  t.false(r.ok);
  t.regex(r.detail, /not valid TOML \(line \d+, column \d+/);
  t.regex(r.fix ?? '', /shoal containerd-config --certs-dir .* --proxy http:\/\/127\.0\.0\.1:65001/);
});

test('a hosts.toml pointing at another mirror fails and lists what it points at', async (t) => {
  const dir = await certsDir(t);
  await writeHosts(dir, 'docker.io', 'server = "https://registry-1.docker.io"\n[host."http://127.0.0.1:5001"]\n  capabilities = ["pull", "resolve"]\n');
  const r = result(t, await checkHostsToml({ certsDir: dir, proxyUrl: PROXY }), 'hosts.toml docker.io');
  t.false(r.ok);
  t.regex(r.detail, /no \[host\."http:\/\/127\.0\.0\.1:65001"\] entry \(mirrors: http:\/\/127\.0\.0\.1:5001\)/);
  t.regex(r.fix ?? '', /--registry docker\.io/);
});

test('the fix for a plain-HTTP registry keeps it plain HTTP', async (t) => {
  const dir = await certsDir(t);
  await writeHosts(dir, '127.0.0.1:5000', 'server = "http://127.0.0.1:5000"\n[host."http://127.0.0.1:5001"]\n');
  const r = result(t, await checkHostsToml({ certsDir: dir, proxyUrl: PROXY }), 'hosts.toml 127.0.0.1:5000');
  t.false(r.ok);
  t.regex(r.fix ?? '', /--plain-http 127\.0\.0\.1:5000 \(rewrites /);
});

test('a hosts.toml with only a server fails: nothing goes to the proxy', async (t) => {
  t.false(judgeHostsToml('server = "https://ghcr.io"\n', PROXY, REWRITE).ok);
});

test('a mirror written without a scheme is https to containerd, so it is not the proxy', (t) => {
  const v = judgeHostsToml('[host."127.0.0.1:65001"]\n  capabilities = ["pull", "resolve"]\n', PROXY, REWRITE);
  t.false(v.ok);
  t.regex(v.detail, /no scheme, so containerd talks https/);
});

test('an unknown capability makes containerd drop the whole file', (t) => {
  const v = judgeHostsToml('[host."http://127.0.0.1:65001"]\n  capabilities = ["pull", "resolve", "fetch"]\n', PROXY, REWRITE);
  t.false(v.ok);
  t.regex(v.detail, /unknown capability "fetch".*ignores the whole file/);
});

test('a header that is not a string makes containerd drop the whole file', (t) => {
  const v = judgeHostsToml('[host."http://127.0.0.1:65001"]\n  capabilities = ["pull", "resolve"]\n  [host."http://127.0.0.1:65001".header]\n    x-n = 1\n', PROXY, REWRITE);
  t.false(v.ok);
  t.regex(v.detail, /header "x-n"/);
});

test('capabilities: none listed means all (containerd default); case does not matter; no pull fails; no resolve warns', (t) => {
  t.is(judgeHostsToml('[host."http://127.0.0.1:65001"]\n', PROXY, REWRITE).ok, true);
  t.is(judgeHostsToml('[host."http://127.0.0.1:65001"]\n  capabilities = ["PULL", "Resolve"]\n', PROXY, REWRITE).ok, true);
  const noPull = judgeHostsToml('[host."http://127.0.0.1:65001"]\n  capabilities = ["resolve"]\n', PROXY, REWRITE);
  t.false(noPull.ok);
  t.regex(noPull.detail, /lacks the pull capability/);
  t.is(judgeHostsToml('[host."http://127.0.0.1:65001"]\n  capabilities = ["pull"]\n', PROXY, REWRITE).ok, 'warn');
});

test('the proxy listed after another mirror, or with TLS settings on http, is a warning', (t) => {
  const after = judgeHostsToml('[host."https://mirror.example"]\n  capabilities = ["pull"]\n[host."http://127.0.0.1:65001"]\n  capabilities = ["pull", "resolve"]\n', PROXY, REWRITE);
  t.is(after.ok, 'warn');
  t.regex(after.detail, /tried only after https:\/\/mirror\.example/);
  const tls = judgeHostsToml('[host."http://127.0.0.1:65001"]\n  capabilities = ["pull", "resolve"]\n  skip_verify = true\n', PROXY, REWRITE);
  t.is(tls.ok, 'warn');
  t.regex(tls.detail, /HTTPS first/);
});

test('override_path or a path on the proxy URL sends requests where the proxy serves nothing', (t) => {
  t.false(judgeHostsToml('[host."http://127.0.0.1:65001"]\n  override_path = true\n', PROXY, REWRITE).ok);
  t.false(judgeHostsToml('[host."http://127.0.0.1:65001/mirror"]\n', PROXY, REWRITE).ok);
  t.is(judgeHostsToml('[host."http://127.0.0.1:65001/v2"]\n', PROXY, REWRITE).ok, true);
});

// containerd uses the first directory that exists among host_port_, host:port
// and _default, whatever is in it: a directory holding only certificates
// shadows _default for that registry.
test('a registry directory without hosts.toml warns, and fails the image registry check when it shadows _default', async (t) => {
  const dir = await certsDir(t);
  await writeContainerdConfig({ certsDir: dir, proxyUrl: PROXY, registries: ['registry.example:5000'], plainHttpHosts: [] });
  await unlink(join(dir, 'registry.example:5000', 'hosts.toml'));
  await writeFile(join(dir, 'registry.example:5000', 'ca.crt'), 'not really a certificate\n');
  const results = await checkHostsToml({ certsDir: dir, proxyUrl: PROXY, registryName: 'registry.example:5000' });
  t.is(result(t, results, 'hosts.toml registry.example:5000').ok, 'warn');
  t.is(result(t, results, 'hosts.toml _default').ok, true);
  const forImage = result(t, results, 'hosts.toml for registry.example:5000');
  t.false(forImage.ok);
  t.regex(forImage.detail, /containerd uses .*registry\.example:5000\/ for registry\.example:5000/);
});

test('host_port_ is tried before host:port, as containerd does', async (t) => {
  const dir = await certsDir(t);
  await writeHosts(dir, '127.0.0.1:5000', `[host."${PROXY}"]\n`);
  await writeHosts(dir, '127.0.0.1_5000_', '[host."http://127.0.0.1:9999"]\n');
  const results = await checkHostsToml({ certsDir: dir, proxyUrl: PROXY, registryName: '127.0.0.1:5000' });
  t.is(result(t, results, 'hosts.toml 127.0.0.1:5000').ok, true);
  t.false(result(t, results, 'hosts.toml 127.0.0.1_5000_').ok);
  t.false(result(t, results, 'hosts.toml for 127.0.0.1:5000').ok);
});

test('without _default only the listed registries go through Shoal: a warning', async (t) => {
  const dir = await certsDir(t);
  await writeHosts(dir, 'docker.io', `server = "https://registry-1.docker.io"\n[host."${PROXY}"]\n  capabilities = ["pull", "resolve"]\n`);
  const results = await checkHostsToml({ certsDir: dir, proxyUrl: PROXY, registryName: 'quay.io' });
  const r = result(t, results, 'hosts.toml _default');
  t.is(r.ok, 'warn');
  t.regex(r.detail, /only docker\.io can go through Shoal/);
  t.false(result(t, results, 'hosts.toml for quay.io').ok);
});
