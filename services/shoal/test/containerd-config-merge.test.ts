import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { parse as parseToml } from 'smol-toml';
import { BACKUP_NAME, configureContainerd, restoreContainerdConfig, SHOAL_MARK } from '../src/commands/containerd-config.js';

// Regression: `shoal containerd-config` replaced a node's own hosts.toml (its
// mirror, CA, client certificate, headers) with the proxy alone, and nothing put
// it back. It now merges the node's file after the proxy, keeps the original as
// a backup, and --restore undoes it exactly.
const PROXY = 'http://127.0.0.1:65001';

async function certsDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-merge-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test("the node's settings follow the proxy, every key kept; the file is backed up; a rerun is idempotent; restore undoes it", async (t) => {
  const dir = await certsDir(t);
  await mkdir(join(dir, 'docker.io'));
  await mkdir(join(dir, 'registry.corp_5000_'));
  const hub = 'server = "https://registry-1.docker.io"\nca = "/etc/corp/ca.pem"\n\n[host."https://mirror.corp"]\n  capabilities = ["pull", "resolve"]\n  ca = "/etc/corp/ca.pem"\n  client = [["/etc/corp/c.pem", "/etc/corp/c.key"]]\n  skip_verify = false\n  override_path = true\n  [host."https://mirror.corp".header]\n    Authorization = ["Basic xyz"]\n';
  const corp = '[host."https://other.corp"]\n  capabilities = ["pull"]\n';
  await writeFile(join(dir, 'docker.io/hosts.toml'), hub);
  await writeFile(join(dir, 'registry.corp_5000_/hosts.toml'), corp);
  const first = await configureContainerd({ certsDir: dir, proxyUrl: PROXY, registries: ['docker.io'], plainHttpHosts: [] });
  t.deepEqual(first.warnings, []);
  t.deepEqual(first.written.map((w) => [w.file.slice(dir.length + 1), w.action]), [
    ['docker.io/hosts.toml', 'merged'],
    ['registry.corp_5000_/hosts.toml', 'merged'],
    ['_default/hosts.toml', 'created'],
  ]);
  const merged = await readFile(join(dir, 'docker.io/hosts.toml'), 'utf8');
  t.true(merged.startsWith(SHOAL_MARK));
  const doc = parseToml(merged) as { server: string; ca: string; host: Record<string, Record<string, unknown>> };
  t.is(doc.server, 'https://registry-1.docker.io');
  t.is(doc.ca, '/etc/corp/ca.pem');
  t.deepEqual(Object.keys(doc.host), [PROXY, 'https://mirror.corp']);
  t.deepEqual(doc.host[PROXY], { capabilities: ['pull', 'resolve'] });
  t.deepEqual(doc.host['https://mirror.corp'], parseToml(hub).host && (parseToml(hub) as { host: Record<string, unknown> }).host['https://mirror.corp']);
  // A registry the chart was not told about, but which the node configured, gains the proxy too.
  t.deepEqual(Object.keys((parseToml(await readFile(join(dir, 'registry.corp_5000_/hosts.toml'), 'utf8')) as { host: object }).host), [PROXY, 'https://other.corp']);
  t.is(await readFile(join(dir, 'docker.io', BACKUP_NAME), 'utf8'), hub);

  await configureContainerd({ certsDir: dir, proxyUrl: PROXY, registries: ['docker.io'], plainHttpHosts: [] });
  t.is(await readFile(join(dir, 'docker.io/hosts.toml'), 'utf8'), merged, 'a rerun (a restarted init container) changes nothing');

  const restored = await restoreContainerdConfig(dir);
  t.deepEqual(restored.map((r) => r.action).sort(), ['removed', 'restored', 'restored']);
  t.is(await readFile(join(dir, 'docker.io/hosts.toml'), 'utf8'), hub);
  t.is(await readFile(join(dir, 'registry.corp_5000_/hosts.toml'), 'utf8'), corp);
  t.deepEqual((await readdir(dir)).sort(), ['docker.io', 'registry.corp_5000_']);
});

test('a node file that is not valid TOML (containerd ignores it) is kept as the backup, the proxy is written alone, and restore puts it back', async (t) => {
  const dir = await certsDir(t);
  await mkdir(join(dir, 'docker.io'));
  const broken = '[host."https://mirror.corp"\n  capabilities = ["pull"]\n';
  await writeFile(join(dir, 'docker.io/hosts.toml'), broken);
  const result = await configureContainerd({ certsDir: dir, proxyUrl: PROXY, registries: ['docker.io'], plainHttpHosts: [] });
  t.is(result.warnings.length, 1);
  t.regex(result.warnings[0] ?? '', /not valid TOML/);
  t.deepEqual(Object.keys((parseToml(await readFile(join(dir, 'docker.io/hosts.toml'), 'utf8')) as { host: object }).host), [PROXY]);
  t.is(await readFile(join(dir, 'docker.io', BACKUP_NAME), 'utf8'), broken);
  await restoreContainerdConfig(dir);
  t.is(await readFile(join(dir, 'docker.io/hosts.toml'), 'utf8'), broken);
});
