import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type { CheckResult } from '../src/commands/check-result.js';
import { checkContainerdConfig } from '../src/commands/doctor-containerd-config.js';

// `shoal doctor`'s containerd config checks against real files: is the CRI
// registry config_path on, and does it name the certs dir hosts.toml is in?

const V2 = '[plugins."io.containerd.grpc.v1.cri".registry]';
const V3 = '[plugins."io.containerd.cri.v1.images".registry]';

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-doctor-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes config.toml in a temp dir (with a certs.d next to it) and runs the check. */
async function check(t: ExecutionContext, text: string, files: Record<string, string> = {}): Promise<{ results: CheckResult[]; dir: string; certsDir: string }> {
  const dir = await tempDir(t);
  const certsDir = join(dir, 'certs.d');
  await mkdir(certsDir);
  const expand = (s: string): string => s.replaceAll('@CERTS@', certsDir).replaceAll('@DIR@', dir);
  await writeFile(join(dir, 'config.toml'), expand(text));
  for (const [name, body] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), expand(body));
  }
  return { results: await checkContainerdConfig(join(dir, 'config.toml'), certsDir), dir, certsDir };
}

function result(t: ExecutionContext, results: readonly CheckResult[], name: string): CheckResult {
  const found = results.find((r) => r.check === name);
  if (found === undefined) t.fail(`no "${name}" result in ${JSON.stringify(results, null, 2)}`);
  return found as CheckResult;
}

test('a containerd 1.6/1.7 config (version 2) with config_path = certs dir passes every check', async (t) => {
  const { results } = await check(t, `version = 2\n[plugins]\n  [plugins."io.containerd.grpc.v1.cri"]\n    sandbox_image = "pause"\n  ${V2}\n    config_path = "@CERTS@"\n`);
  t.deepEqual(results.map((r) => [r.check, r.ok]), [
    ['containerd config', true],
    ['CRI plugin', true],
    ['config_path', true],
    ['legacy mirrors', true],
  ]);
});

test('a containerd 2.x config (version 3) reads config_path from io.containerd.cri.v1.images', async (t) => {
  const { results } = await check(t, `version = 3\n${V3}\n  config_path = '@CERTS@'\n`);
  t.is(result(t, results, 'config_path').ok, true);
});

test('config_path given through a symlink to the certs dir still matches', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'real-certs'));
  await symlink(join(dir, 'real-certs'), join(dir, 'link'));
  await writeFile(join(dir, 'config.toml'), `version = 2\n${V2}\n  config_path = "${join(dir, 'link')}"\n`);
  const results = await checkContainerdConfig(join(dir, 'config.toml'), join(dir, 'real-certs'));
  t.is(result(t, results, 'config_path').ok, true);
});

test('a missing config file fails "containerd config" and says how to find the real one', async (t) => {
  const dir = await tempDir(t);
  const results = await checkContainerdConfig(join(dir, 'nope.toml'), join(dir, 'certs.d'));
  t.is(results.length, 1);
  const r = result(t, results, 'containerd config');
  t.false(r.ok);
  t.regex(r.detail, /nope\.toml does not exist/);
  t.regex(r.fix ?? '', /--containerd-config FILE/);
  t.regex(r.fix ?? '', /containerd config default > .*nope\.toml/);
});

test('a config that is not valid TOML fails with the line containerd would choke on', async (t) => {
  const { results } = await check(t, `version = 2\n${V2}\n  config_path = "unterminated\n`);
  const r = result(t, results, 'containerd config');
  t.false(r.ok);
  t.regex(r.detail, /not valid TOML \(line 3, column \d+/);
});

test('an unknown config version fails', async (t) => {
  const { results } = await check(t, 'version = 7\n');
  t.false(result(t, results, 'containerd config').ok);
});

test('config_path missing fails and shows the exact section to add', async (t) => {
  const { results } = await check(t, 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "pause"\n');
  const r = result(t, results, 'config_path');
  t.false(r.ok);
  t.regex(r.detail, /not set under \[plugins\."io\.containerd\.grpc\.v1\.cri"\.registry\]/);
  t.regex(r.fix ?? '', /\[plugins\."io\.containerd\.grpc\.v1\.cri"\.registry\]\n {2}config_path = ".*certs\.d"/);
  t.regex(r.fix ?? '', /restart containerd/);
});

test('an empty config_path is the same as none', async (t) => {
  const { results } = await check(t, `version = 2\n${V2}\n  config_path = ""\n`);
  const r = result(t, results, 'config_path');
  t.false(r.ok);
  t.regex(r.fix ?? '', /in the \[plugins\."io\.containerd\.grpc\.v1\.cri"\.registry\] section/, 'the section exists: set the key there, do not add it twice');
});

test('config_path pointing at another directory fails and names it', async (t) => {
  const { results } = await check(t, `version = 2\n${V2}\n  config_path = "/etc/docker/certs.d"\n`);
  const r = result(t, results, 'config_path');
  t.false(r.ok);
  t.regex(r.detail, /config_path = "\/etc\/docker\/certs\.d".*not from .*certs\.d/);
  t.regex(r.fix ?? '', /--certs-dir \/etc\/docker\/certs\.d/);
});

test('config_path as a list that includes the certs dir is a warning (containerd 2.1+ takes one directory)', async (t) => {
  const { results } = await check(t, `version = 2\n${V2}\n  config_path = "@CERTS@:/etc/docker/certs.d"\n`);
  const r = result(t, results, 'config_path');
  t.is(r.ok, 'warn');
  t.regex(r.detail, /2 directories/);
});

test('config_path under the 1.x section of a version 3 config fails: containerd 2.x does not read it there', async (t) => {
  const { results } = await check(t, `version = 3\n${V2}\n  config_path = "@CERTS@"\n`);
  const r = result(t, results, 'config_path');
  t.false(r.ok);
  t.regex(r.detail, /version 3 config does not read/);
  t.regex(r.fix ?? '', /io\.containerd\.cri\.v1\.images/);
});

// containerd refuses to load its CRI plugin with both (seen with containerd
// 1.6.20: "failed to load plugin io.containerd.grpc.v1.cri" error="invalid
// plugin config: `mirrors` cannot be set when `config_path` is provided"), so
// this is a failure, not a style warning: the kubelet cannot pull at all.
test('legacy registry.mirrors next to config_path fail: the CRI plugin would not load', async (t) => {
  const { results } = await check(
    t,
    `version = 2\n${V2}\n  config_path = "@CERTS@"\n  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n    endpoint = ["https://mirror.example"]\n`,
  );
  t.is(result(t, results, 'config_path').ok, true);
  const r = result(t, results, 'legacy mirrors');
  t.false(r.ok);
  t.regex(r.detail, /registry\.mirrors for docker\.io/);
  t.regex(r.detail, /`mirrors` cannot be set when `config_path` is provided/);
});

test('legacy registry.configs.*.tls next to config_path fail too', async (t) => {
  const { results } = await check(t, `version = 2\n${V2}\n  config_path = "@CERTS@"\n  [plugins."io.containerd.grpc.v1.cri".registry.configs."r.example".tls]\n    insecure_skip_verify = true\n`);
  const r = result(t, results, 'legacy mirrors');
  t.false(r.ok);
  t.regex(r.detail, /configs\.\*\.tls for r\.example/);
});

test('legacy mirrors without config_path are a warning (config_path itself fails)', async (t) => {
  const { results } = await check(t, `version = 2\n${V2}\n  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n    endpoint = ["https://mirror.example"]\n`);
  t.false(result(t, results, 'config_path').ok);
  t.is(result(t, results, 'legacy mirrors').ok, 'warn');
});

test('a disabled CRI plugin is a warning: only ctr reads hosts.toml then', async (t) => {
  const { results } = await check(t, `version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n${V2}\n  config_path = "@CERTS@"\n`);
  t.is(result(t, results, 'CRI plugin').ok, 'warn');
  t.is(result(t, results, 'config_path').ok, true);
});

test('config_path set in an imported drop-in file (glob) is found', async (t) => {
  const { results } = await check(t, 'version = 2\nimports = ["conf.d/*.toml"]\n', {
    'conf.d/10-shoal.toml': `version = 2\n${V2}\n  config_path = "@CERTS@"\n`,
    'conf.d/ignored.txt': `version = 2\n${V2}\n  config_path = "/elsewhere"\n`,
  });
  t.is(result(t, results, 'config_path').ok, true);
  t.regex(result(t, results, 'containerd config').detail, /1 imported file/);
});

// containerd's mergeConfig replaces a plugin's whole table with the imported
// one: a drop-in that configures the CRI plugin drops a config_path set in
// the main file.
test('an import that redefines the CRI plugin section drops the main file\'s config_path', async (t) => {
  const { results } = await check(t, `version = 2\nimports = ["@DIR@/cri.toml"]\n${V2}\n  config_path = "@CERTS@"\n`, {
    'cri.toml': 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "pause"\n',
  });
  t.false(result(t, results, 'config_path').ok);
});
