import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { parse as parseToml } from 'smol-toml';
import { BACKUP_NAME, startNodeAgent, startSupernode } from '@shoal/cli';
import { buildImage, makeTempDir, minimalEnv, pushImage, removeTempDir, requireTools, runCommand, servedBlobs, startContainerd, startRegistry } from '@shoal/testkit';
import { testLogger } from './helpers/cluster.js';
import { SHOAL } from './helpers/processes.js';

// docs/install.md, followed on this machine where it can be: its containerd
// 1.6/1.7 config_path snippet given to a real containerd, a node's own
// hosts.toml merged by the chart's init container command, its `shoal doctor`
// command passing on the wired node, a pull served by the swarm, and its
// uninstall step putting the node's file back. (The helm steps are held by the
// chart tests: a real helm renders them, and Kubernetes schemas validate them.)
const DOC = fileURLToPath(new URL('../../../docs/install.md', import.meta.url));
const DOC_CERTS_DIR = '/etc/containerd/certs.d';

function tomlBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```toml\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
}

/** The flags of the doc's `shoal doctor` command (a shell line continued with backslashes). */
function doctorFlags(markdown: string): Map<string, string> {
  const command = /shoal doctor ((?:[^\n]*\\\n)*[^\n]*)/.exec(markdown)?.[1]?.replace(/\\\n/g, ' ') ?? '';
  return new Map([...command.matchAll(/--([a-z-]+) (\S+)/g)].map((m) => [m[1] ?? '', m[2] ?? '']));
}

test('docs/install.md: containerd config_path, merged hosts.toml, shoal doctor, a swarm pull, uninstall restore', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const doc = await readFile(DOC, 'utf8');
  const [v2, v3] = tomlBlocks(doc);
  if (v2 === undefined || v3 === undefined) throw new Error('docs/install.md: expected the containerd 1.6/1.7 and 2.x TOML blocks');
  t.is((parseToml(v2) as { plugins: Record<string, { registry: { config_path: string } }> }).plugins['io.containerd.grpc.v1.cri']?.registry.config_path, DOC_CERTS_DIR);
  t.is((parseToml(v3) as { plugins: Record<string, { registry: { config_path: string } }> }).plugins['io.containerd.cri.v1.images']?.registry.config_path, DOC_CERTS_DIR);

  const dir = await makeTempDir('install-doc');
  t.teardown(() => removeTempDir(dir));
  const certsDir = join(dir, 'certs.d');
  const log = testLogger();
  const registry = await startRegistry();
  t.teardown(() => registry.stop());
  const image = await buildImage({ dir: join(dir, 'layout'), tag: 'v1', layers: [{ sizeBytes: 512 * 1024, seed: 'install-doc' }] });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: 'doc/app' });
  const ref = `${registry.host}/doc/app:v1`;
  const supernode = await startSupernode(log.child({ role: 'supernode' }), { listen: '127.0.0.1:0', dataDir: join(dir, 'supernode'), plainHttpHosts: [registry.host], token: undefined });
  t.teardown(() => supernode.close());
  const agent = await startNodeAgent(log.child({ role: 'node' }), { supernodeUrls: [supernode.url], peerListen: '127.0.0.1:0', advertise: undefined, dataDir: join(dir, 'node'), token: undefined, proxyListen: '127.0.0.1:0', plainHttpHosts: [registry.host] });
  t.teardown(() => agent.close());

  // Step 1: the doc's snippet, as written (only the directory moved into the test's temp dir).
  const containerd = await startContainerd({ name: 'install-doc', extraConfig: v2.replaceAll(DOC_CERTS_DIR, certsDir) });
  t.teardown(() => containerd.stop());

  // A node with its own hosts.toml for the registry (a header its mirror wants).
  const own = join(certsDir, registry.host);
  await mkdir(own, { recursive: true });
  const original = `server = "http://${registry.host}"\n\n[host."http://${registry.host}"]\n  capabilities = ["pull", "resolve"]\n  [host."http://${registry.host}".header]\n    X-Node = ["own"]\n`;
  await writeFile(join(own, 'hosts.toml'), original);

  // Step 2: what the chart's init container runs.
  const env = minimalEnv();
  const init = await runCommand(process.execPath, [SHOAL, 'containerd-config', `--certs-dir=${certsDir}`, `--proxy=${agent.proxyUrl}`, '--registry=docker.io', `--plain-http=${registry.host}`], { env });
  t.is(init.code, 0, init.stderr);
  t.is(await readFile(join(own, BACKUP_NAME), 'utf8'), original);

  // Step 3: the doc's `shoal doctor` command, with this node's paths.
  const flags = doctorFlags(doc);
  t.deepEqual([...flags.keys()].sort(), ['certs-dir', 'containerd-config', 'image', 'proxy']);
  const doctor = await runCommand(
    process.execPath,
    [SHOAL, 'doctor', '--containerd-config', containerd.configPath, '--certs-dir', certsDir, '--proxy', agent.proxyUrl, '--image', ref],
    { env, timeoutMs: 60_000 },
  );
  t.is(doctor.code, 0, `${doctor.stdout}\n${doctor.stderr}`);
  t.notRegex(doctor.stdout, /✘/);

  // containerd pulls through the proxy: blobs from the swarm.
  const pull = await containerd.pull(ref, { hostsDir: certsDir, debug: true });
  for (const layer of image.layers) t.true(['supernode', 'peer'].includes(servedBlobs(pull.requests()).get(layer.digest)?.headers?.['x-shoal-source'] ?? ''));

  // Step 6: the uninstall hook's command.
  const restore = await runCommand(process.execPath, [SHOAL, 'containerd-config', `--certs-dir=${certsDir}`, '--restore'], { env });
  t.is(restore.code, 0, restore.stderr);
  t.is(await readFile(join(own, 'hosts.toml'), 'utf8'), original);
});
