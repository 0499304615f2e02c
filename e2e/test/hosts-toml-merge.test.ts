import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { BACKUP_NAME, SHOAL_MARK } from '@shoal/cli';
import { buildImage, deadPort, makeTempDir, minimalEnv, pushImage, removeTempDir, requireTools, servedBlobs, startContainerd, startRegistry } from '@shoal/testkit';
import { SHOAL } from './helpers/processes.js';

// Regression: `shoal containerd-config` (the chart's init container) overwrote a
// node's own <registry>/hosts.toml, so a corporate mirror with its CA and headers
// was silently dropped, and uninstalling left every node pointing at a dead proxy.
// Now the node's file is merged after the proxy, backed up, and restored by
// `--restore` (the chart's post-delete hook). A real containerd reads the merged
// file: with the proxy down it must fall back to the node's own mirror, not fail
// and not go to `server`.
const run = promisify(execFile);
const shoal = (args: string[]) => run(process.execPath, [SHOAL, ...args], { env: minimalEnv() });

test("containerd reads the merged hosts.toml: proxy first, then the node's own mirror; --restore puts the node's file back", async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const dir = await makeTempDir('shoal-hosts-merge');
  t.teardown(() => removeTempDir(dir));
  const mirror = await startRegistry();
  t.teardown(() => mirror.stop());
  const containerd = await startContainerd({ name: 'hosts-merge' });
  t.teardown(() => containerd.stop());

  const image = await buildImage({ dir: join(dir, 'layout'), tag: 'v1', layers: [{ sizeBytes: 256 * 1024, seed: 'hosts-merge' }] });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: mirror.host, repository: 'test/app' });

  // The node's "registry": nothing listens there, so only a mirror can serve it.
  const upstream = `127.0.0.1:${await deadPort()}`;
  const deadProxy = `http://127.0.0.1:${await deadPort()}`;
  const certsDir = join(dir, 'certs.d');
  const own = join(certsDir, upstream);
  await mkdir(own, { recursive: true });
  await writeFile(join(own, 'corp-ca.pem'), '');
  const original = [
    '# the node\'s own mirror for this registry',
    `server = "http://${upstream}"`,
    '',
    `[host."http://${mirror.host}"]`,
    '  capabilities = ["pull", "resolve"]',
    '  [host."http://' + mirror.host + '".header]',
    '    X-Corp-Mirror = ["node-a"]',
    '',
  ].join('\n');
  await writeFile(join(own, 'hosts.toml'), original);

  const { stdout } = await shoal(['containerd-config', `--certs-dir=${certsDir}`, `--proxy=${deadProxy}`, `--plain-http=${upstream}`]);
  t.regex(stdout, /merged .*hosts\.toml/);
  const merged = await readFile(join(own, 'hosts.toml'), 'utf8');
  t.true(merged.startsWith(SHOAL_MARK));
  t.true(merged.indexOf(deadProxy) < merged.indexOf(mirror.host), 'the proxy comes first');
  t.regex(merged, /X-Corp-Mirror = \[ "node-a" \]/, "the node's header is kept");
  t.regex(merged, new RegExp(`server = "http://${upstream.replace(/\./g, '\\.')}"`));
  t.is(await readFile(join(own, BACKUP_NAME), 'utf8'), original, 'the original is backed up byte for byte');

  // Running it again (a restarted init container) changes nothing.
  await shoal(['containerd-config', `--certs-dir=${certsDir}`, `--proxy=${deadProxy}`, `--plain-http=${upstream}`]);
  t.is(await readFile(join(own, 'hosts.toml'), 'utf8'), merged);
  t.is(await readFile(join(own, BACKUP_NAME), 'utf8'), original);

  // containerd tries the (dead) proxy first, then the node's mirror, which serves the image.
  const ref = `${upstream}/test/app:v1`;
  const pull = await containerd.pull(ref, { hostsDir: certsDir, debug: true });
  t.true(await containerd.imageUnpacked(ref), 'the pull succeeded through the fallback');
  const requests = pull.requests();
  const proxyHost = new URL(deadProxy).host;
  t.is(requests[0]?.host, proxyHost, `the first request went to the proxy (${requests[0]?.url})`);
  const served = servedBlobs(requests);
  for (const layer of image.layers) t.is(served.get(layer.digest)?.host, mirror.host, "the layer came from the node's own mirror");
  t.false(requests.some((r) => r.host === upstream && r.status !== undefined), 'server was never reached');

  // Uninstall: the node's file is back exactly, _default (ours alone) is gone.
  const restored = await shoal(['containerd-config', `--certs-dir=${certsDir}`, '--restore']);
  t.regex(restored.stdout, /restored .*hosts\.toml/);
  t.is(await readFile(join(own, 'hosts.toml'), 'utf8'), original);
  t.false((await readdir(own)).includes(BACKUP_NAME));
  t.deepEqual(await readdir(certsDir), [upstream], "only the node's own directory is left");
});
