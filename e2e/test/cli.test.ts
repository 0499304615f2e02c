import test from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildImage, httpOk, makeTempDir, minimalEnv, pushImage, removeTempDir, requireTools, runCommand, startRegistry, waitFor } from '@shoal/testkit';
import { SHOAL, spawnNode, spawnSupernode } from './helpers/processes.js';

test('bad configuration is reported all at once, with exit code 2', async (t) => {
  const result = await runCommand(process.execPath, [SHOAL, 'node', '--proxy-listen', 'nowhere', '--peer-listen', '1.2.3.4:99999'], {
    env: minimalEnv({ SHOAL_DATA: '' }),
  });
  t.is(result.code, 2);
  t.regex(result.stderr, /--supernode \(or SHOAL_SUPERNODE\) is required/);
  t.regex(result.stderr, /--proxy-listen: expected HOST:PORT/);
  t.regex(result.stderr, /--peer-listen: port out of range/);
});

test('--max-fetches-per-registry is checked at the edge: 0 or more than the 16 fetch slots is a configuration error', async (t) => {
  for (const value of ['0', '17', 'many']) {
    const result = await runCommand(process.execPath, [SHOAL, 'supernode', '--max-fetches-per-registry', value], { env: minimalEnv({ SHOAL_DATA: '' }) });
    t.is(result.code, 2, `${value}: ${result.stderr}`);
    t.regex(result.stderr, /--max-fetches-per-registry/);
  }
  const help = await runCommand(process.execPath, [SHOAL, 'supernode', '--help'], { env: minimalEnv({}) });
  t.regex(help.stdout + help.stderr, /--max-fetches-per-registry[^\n]*\(default 4\)/);
});

test('--chain-members is checked at the edge: 0 to 64, off by default', async (t) => {
  for (const value of ['-1', '65', 'all']) {
    const result = await runCommand(process.execPath, [SHOAL, 'supernode', '--chain-members', value], { env: minimalEnv({ SHOAL_DATA: '' }) });
    t.is(result.code, 2, `${value}: ${result.stderr}`);
    t.regex(result.stderr, /--chain-members/);
  }
  const help = await runCommand(process.execPath, [SHOAL, 'supernode', '--help'], { env: minimalEnv({}) });
  t.regex(help.stdout + help.stderr, /--chain-members[^\n]*\(default 0\)/);
});

test('containerd-config writes hosts.toml per registry and _default', async (t) => {
  const dir = await makeTempDir('shoal-cli');
  t.teardown(() => removeTempDir(dir));
  const result = await runCommand(process.execPath, [SHOAL, 'containerd-config', '--certs-dir', dir, '--registry', 'docker.io,ghcr.io', '--plain-http', '127.0.0.1:5000'], { env: minimalEnv() });
  t.is(result.code, 0, result.stderr);
  const hub = await readFile(join(dir, 'docker.io', 'hosts.toml'), 'utf8');
  t.regex(hub, /^server = "https:\/\/registry-1\.docker\.io"$/m);
  t.regex(hub, /^\[host\."http:\/\/127\.0\.0\.1:65001"\]$/m);
  t.regex(hub, /capabilities = \["pull", "resolve"\]/);
  t.notRegex(hub, /skip_verify|ca =|dial_timeout/);
  t.regex(await readFile(join(dir, '127.0.0.1:5000', 'hosts.toml'), 'utf8'), /^server = "http:\/\/127\.0\.0\.1:5000"$/m);
  t.regex(await readFile(join(dir, 'ghcr.io', 'hosts.toml'), 'utf8'), /^server = "https:\/\/ghcr\.io"$/m);
  t.notRegex(await readFile(join(dir, '_default', 'hosts.toml'), 'utf8'), /^server/m);
});

// The executable end to end: `shoal supernode` and `shoal node` as processes
// configured only through SHOAL_* variables, then `shoal pull` and `shoal status`.
test('shoal supernode + shoal node + shoal pull, configured by environment', async (t) => {
  await requireTools(['docker-registry', 'skopeo']);
  const dir = await makeTempDir('shoal-cli');
  t.teardown(() => removeTempDir(dir));
  const registry = await startRegistry();
  t.teardown(() => registry.stop());
  const image = await buildImage({ dir: join(dir, 'layout'), tag: 'v1', layers: [{ sizeBytes: 3 * 1024 * 1024, seed: 'cli' }] });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: 'cli/app' });

  const supernode = await spawnSupernode(dir, registry.host, 'sn');
  t.teardown(() => supernode.process.stop());
  const node = await spawnNode(dir, 'node', supernode.url, registry.host);
  t.teardown(() => node.process.stop());
  await waitFor(() => httpOk(`${node.peerUrl}/healthz`), { timeoutMs: 20_000 });
  const env = minimalEnv({ SHOAL_PLAIN_HTTP: registry.host, SHOAL_LOG_LEVEL: 'warn' });

  const pull = await runCommand(process.execPath, [SHOAL, 'pull', `${registry.host}/cli/app:v1`], { env: { ...env, SHOAL_PROXY: node.url } });
  t.is(pull.code, 0, pull.stderr);
  t.regex(pull.stdout, /supernode/);
  t.regex(pull.stdout, /pulled .*cli\/app:v1/);

  await waitFor(async () => {
    const status = await runCommand(process.execPath, [SHOAL, 'status'], { env: { ...env, SHOAL_SUPERNODE: supernode.url } });
    return /1 peer\(s\)/.test(status.stdout);
  }, { timeoutMs: 15_000 });
  t.pass();
});
