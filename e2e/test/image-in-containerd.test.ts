import { chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { buildImage, freePort, httpOk, makeTempDir, pushImage, removeTempDir, requireTools, runCommand, servedBlobs, startContainerd, startRegistry, waitFor } from '@shoal/testkit';

// The image `npm run image` builds, run by a real containerd as the chart runs it:
// `ctr run --net-host --read-only` (only the data volume and the token are
// writable/mounted), as the image's non-root user. A supernode and a node agent
// from the image serve a pull whose blobs come from the swarm; the node's proxy
// metrics are scrapeable on the peer port; SIGTERM to PID 1 closes both services
// cleanly (exit 0, well before the 10 s forced exit).
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BUILDER = join(ROOT, 'tools/dist/src/image/build.js');
const IMAGE_UID = 65532;
const TOKEN = 'image-test-token-0123456789abcdef';

interface Summary {
  reference: string;
  platforms: Array<{ platform: string; compressedBytes: number; uncompressedBytes: number }>;
}

test('the image runs a supernode and a node agent in containerd, read-only; a pull comes from the swarm; SIGTERM closes them', async (t) => {
  t.timeout(10 * 60_000);
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo', 'mmdebstrap']);
  // Cheap when its layers are cached (the test command builds it before the suite starts).
  const build = await runCommand(process.execPath, [BUILDER], { env: Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined)), timeoutMs: 9 * 60_000 });
  if (build.code !== 0) throw new Error(`npm run image failed:\n${build.stdout}\n${build.stderr}`);
  const summary = JSON.parse(await readFile(join(ROOT, 'dist/shoal-image.json'), 'utf8')) as Summary;
  t.log(build.stdout.trim());
  for (const p of summary.platforms) t.true(p.compressedBytes <= 120 * 1024 * 1024, `${p.platform}: ${p.compressedBytes} bytes compressed, over 120 MiB`);
  t.deepEqual(summary.platforms.map((p) => p.platform), ['linux/amd64', 'linux/arm64']);

  const dir = await makeTempDir('shoal-image-ctr');
  t.teardown(() => removeTempDir(dir));
  const registry = await startRegistry();
  t.teardown(() => registry.stop());
  const containerd = await startContainerd({ name: 'image-ctr' });
  t.teardown(() => containerd.stop());
  const ctr = async (args: string[], timeoutMs = 120_000) => {
    const r = await containerd.ctr(args, { timeoutMs });
    if (r.code !== 0) throw new Error(`ctr ${args.join(' ')}: ${r.stderr.trim()}`);
    return r;
  };
  const started: string[] = [];
  t.teardown(async () => {
    for (const id of started) {
      await containerd.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
      await containerd.ctr(['task', 'delete', '-f', id]);
      await containerd.ctr(['container', 'delete', id]);
    }
  });

  await ctr(['images', 'import', join(ROOT, 'dist/shoal-image.oci.tar')], 300_000);
  t.true(await containerd.imageUnpacked(summary.reference), `${summary.reference} imported and unpacked`);

  const app = await buildImage({ dir: join(dir, 'layout'), tag: 'v1', layers: [{ sizeBytes: 3 * 1024 * 1024, seed: 'image-ctr-a' }, { sizeBytes: 100_000, seed: 'image-ctr-b' }] });
  await pushImage({ layoutDir: app.layoutDir, tag: 'v1', registry: registry.host, repository: 'test/app' });

  const tokenDir = join(dir, 'token');
  await mkdir(tokenDir);
  await writeFile(join(tokenDir, 'token'), `${TOKEN}\n`);
  const volume = async (name: string): Promise<string> => {
    const path = join(dir, name);
    await mkdir(path, { recursive: true });
    await chown(path, IMAGE_UID, IMAGE_UID);
    return path;
  };
  const [supernodePort, proxyPort, peerPort] = [await freePort(), await freePort(), await freePort()];
  const runDetached = async (id: string, data: string, args: string[]): Promise<string> => {
    const log = join(dir, `${id}.log`);
    await ctr([
      'run', '-d', '--net-host', '--read-only', '--log-uri', `file://${log}`,
      '--mount', `type=bind,src=${data},dst=/data,options=rbind:rw`,
      '--mount', `type=bind,src=${tokenDir},dst=/etc/shoal/token,options=rbind:ro`,
      summary.reference, id, ...args,
    ]);
    started.push(id);
    return log;
  };
  const supernodeLog = await runDetached('supernode', await volume('supernode'), ['shoal', 'supernode', `--listen=127.0.0.1:${supernodePort}`, '--data=/data', '--token-file=/etc/shoal/token/token', `--plain-http=${registry.host}`]);
  const nodeLog = await runDetached('node', await volume('node'), [
    'shoal', 'node', `--supernode=http://127.0.0.1:${supernodePort}`, `--proxy-listen=127.0.0.1:${proxyPort}`, `--peer-listen=127.0.0.1:${peerPort}`,
    `--advertise=http://127.0.0.1:${peerPort}`, '--data=/data', '--token-file=/etc/shoal/token/token', `--plain-http=${registry.host}`, '--node-name=image-test',
  ]);
  const logs = async (): Promise<string> => `${await readFile(supernodeLog, 'utf8').catch(() => '')}\n${await readFile(nodeLog, 'utf8').catch(() => '')}`;
  try {
    // Ready, and on these ports: their own logs say so (another test's server may answer on a freePort port).
    const listening = async (): Promise<boolean> => {
      const text = await logs();
      return [supernodePort, proxyPort].every((port) => new RegExp(`"url":"http://127\\.0\\.0\\.1:${port}"`).test(text));
    };
    const ready = async (): Promise<boolean> =>
      (await httpOk(`http://127.0.0.1:${supernodePort}/readyz`)) && (await httpOk(`http://127.0.0.1:${proxyPort}/readyz`)) && (await listening());
    await waitFor(ready, { description: 'supernode and node agent from the image ready', timeoutMs: 60_000 });
  } catch (err) {
    t.log(await logs());
    throw err;
  }

  // The chart's init container: hosts.toml written by the image's own `shoal containerd-config`.
  const certs = await volume('certs.d');
  const config = await containerd.ctr([
    'run', '--rm', '--net-host', '--read-only', '--mount', `type=bind,src=${certs},dst=/certs,options=rbind:rw`,
    summary.reference, 'containerd-config', 'shoal', 'containerd-config', '--certs-dir=/certs', `--proxy=http://127.0.0.1:${proxyPort}`, `--plain-http=${registry.host}`,
  ]);
  t.is(config.code, 0, config.stderr);

  const ref = `${registry.host}/test/app:v1`;
  const pull = await containerd.pull(ref, { hostsDir: certs, debug: true });
  t.true(await containerd.imageUnpacked(ref));
  const served = servedBlobs(pull.requests());
  for (const layer of app.layers) {
    const r = served.get(layer.digest);
    t.is(r?.host, `127.0.0.1:${proxyPort}`, `${layer.digest} from the proxy in the image`);
    t.true(['supernode', 'peer'].includes(r?.headers?.['x-shoal-source'] ?? ''), `${layer.digest}: X-Shoal-Source ${r?.headers?.['x-shoal-source']}`);
  }

  // Prometheus reaches the node on its peer port; the proxy's counters are there.
  const metrics = await (await fetch(`http://127.0.0.1:${peerPort}/metrics`)).text();
  t.regex(metrics, /shoal_proxy_blob_bytes_total\{source="supernode"\} [1-9]/);
  t.regex(metrics, /shoal_peer_cache_bytes [1-9]/);

  // SIGTERM to PID 1: each service closes and exits 0 (the 10 s forced exit would be 1).
  for (const id of ['node', 'supernode']) {
    const sent = Date.now();
    await ctr(['task', 'kill', '-s', 'SIGTERM', id]);
    await waitFor(async () => /\bSTOPPED\b/.test((await containerd.ctr(['task', 'ls'])).stdout.split('\n').find((l) => l.startsWith(`${id} `)) ?? ''), { description: `${id} stopped`, timeoutMs: 15_000, intervalMs: 100 });
    const elapsedMs = Date.now() - sent;
    const deleted = await containerd.ctr(['task', 'delete', id]);
    t.is(deleted.code, 0, `${id} exited 0 on SIGTERM (ctr task delete: ${deleted.stderr.trim()})`);
    t.true(elapsedMs < 8_000, `${id} took ${elapsedMs} ms to stop`);
    await containerd.ctr(['container', 'delete', id]);
    started.splice(started.indexOf(id), 1);
  }
  t.regex(await logs(), /"signal":"SIGTERM".*"msg":"shutting down"/);
});
