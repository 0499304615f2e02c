import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startNodeAgent, startSupernode } from '@shoal/cli';
import { buildImage, makeTempDir, minimalEnv, pushImage, removeTempDir, requireTools, runCommand, servedBlobs, startContainerd, startRegistry } from '@shoal/testkit';
import { testLogger } from './helpers/cluster.js';
import { SHOAL } from './helpers/processes.js';

interface Report {
  ok: boolean;
  results: Array<{ check: string; ok: boolean | 'warn'; detail: string }>;
}

// `shoal doctor` against a real node: docker-registry, a supernode, a node
// agent, and a real containerd started with config_path in its config.toml,
// its certs dir written by `shoal containerd-config`. Doctor must pass there
// (and containerd must then really pull through the proxy), then fail with
// exit code 1 naming the one check that was broken: a hosts.toml that does
// not parse, then the proxy stopped.
test('shoal doctor passes on a wired node, then names the check that breaks', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const dir = await makeTempDir('doctor');
  t.teardown(() => removeTempDir(dir));
  const certsDir = join(dir, 'certs.d');
  const log = testLogger();

  const registry = await startRegistry();
  t.teardown(() => registry.stop());
  const image = await buildImage({ dir: join(dir, 'layout'), tag: 'v1', layers: [{ sizeBytes: 256 * 1024, seed: 'doctor' }] });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: 'doctor/app' });
  const ref = `${registry.host}/doctor/app:v1`;

  const supernode = await startSupernode(log.child({ role: 'supernode' }), { listen: '127.0.0.1:0', dataDir: join(dir, 'supernode'), plainHttpHosts: [registry.host], token: undefined });
  t.teardown(() => supernode.close());
  const agent = await startNodeAgent(log.child({ role: 'node' }), {
    supernodeUrls: [supernode.url],
    peerListen: '127.0.0.1:0',
    advertise: undefined,
    dataDir: join(dir, 'node'),
    token: undefined,
    proxyListen: '127.0.0.1:0',
    plainHttpHosts: [registry.host],
  });
  let agentClosed: Promise<void> | undefined;
  const closeAgent = (): Promise<void> => (agentClosed ??= agent.close());
  t.teardown(closeAgent);
  const containerd = await startContainerd({
    name: 'doctor',
    extraConfig: `[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = ${JSON.stringify(certsDir)}\n`,
  });
  t.teardown(() => containerd.stop());

  const env = minimalEnv();
  const writeHosts = async (): Promise<void> => {
    const written = await runCommand(process.execPath, [SHOAL, 'containerd-config', '--certs-dir', certsDir, '--proxy', agent.proxyUrl, '--plain-http', registry.host], { env });
    t.is(written.code, 0, written.stderr);
  };
  await writeHosts();
  const doctor = (...extra: string[]) =>
    runCommand(process.execPath, [SHOAL, 'doctor', '--containerd-config', containerd.configPath, '--certs-dir', certsDir, '--proxy', agent.proxyUrl, '--image', ref, ...extra], { env, timeoutMs: 60_000 });

  // 1. Wired: every check passes. The testkit's containerd runs without its CRI
  // plugin (no kubelet here), which doctor reports as a warning: exit code 0.
  const passing = await doctor('--json');
  t.is(passing.code, 0, `${passing.stdout}\n${passing.stderr}`);
  const report = JSON.parse(passing.stdout) as Report;
  t.true(report.ok);
  t.deepEqual(
    report.results.map((r) => [r.check, r.ok]),
    [
      ['containerd config', true],
      ['CRI plugin', 'warn'],
      ['config_path', true],
      ['legacy mirrors', true],
      [`hosts.toml ${registry.host}`, true],
      ['hosts.toml _default', true],
      ['hosts.toml docker.io', true],
      [`hosts.toml for ${registry.host}`, true],
      ['proxy alive', true],
      ['proxy ready', true],
      ['test fetch', true],
    ],
    passing.stdout,
  );
  // A first fetch: the supernode fetched the config blob from the registry, once, for the cluster.
  t.regex(report.results.find((r) => r.check === 'test fetch')?.detail ?? '', /came from supernode/);
  t.is((await registry.blobGets()).get(image.configDigest), 1, 'the registry sent the config blob once, to the supernode');

  // What doctor approved is what containerd does: the layer comes through the proxy, from the swarm.
  const pull = await containerd.pull(ref, { hostsDir: certsDir, debug: true });
  const layer = servedBlobs(pull.requests()).get(image.layers[0]?.digest ?? image.configDigest);
  t.is(layer?.host, new URL(agent.proxyUrl).host, 'containerd fetched the layer from the proxy');
  t.true(['supernode', 'peer', 'local'].includes(layer?.headers?.['x-shoal-source'] ?? ''), 'and it came from the swarm');

  // 2. The registry's hosts.toml no longer parses: containerd would ignore it silently.
  await writeFile(join(certsDir, registry.host, 'hosts.toml'), `[host."${agent.proxyUrl}"\n  capabilities = ["pull", "resolve"]\n`);
  const badToml = await doctor();
  t.is(badToml.code, 1, badToml.stdout);
  t.regex(badToml.stdout, new RegExp(`^✘ hosts\\.toml ${registry.host.replaceAll('.', '\\.')} +.*not valid TOML`, 'm'));
  t.regex(badToml.stdout, /^ +fix: shoal containerd-config --certs-dir /m);
  t.regex(badToml.stderr, new RegExp(`2 check\\(s\\) failed: hosts\\.toml ${registry.host.replaceAll('.', '\\.')}, hosts\\.toml for `));
  await writeHosts();

  // 3. The proxy is down: only "proxy alive" fails; the test fetch is skipped, not blamed.
  await closeAgent();
  const proxyDown = await doctor();
  t.is(proxyDown.code, 1, proxyDown.stdout);
  t.regex(proxyDown.stdout, /^✘ proxy alive +nothing listens at 127\.0\.0\.1:\d+ \(connection refused\)$/m);
  t.regex(proxyDown.stdout, /^⚠ test fetch +skipped: the proxy is not up$/m);
  t.regex(proxyDown.stdout, /^✔ config_path /m);
  t.regex(proxyDown.stderr, /^shoal doctor: 1 check\(s\) failed: proxy alive$/m);
});
