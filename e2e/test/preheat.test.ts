import test, { type ExecutionContext } from 'ava';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MAX_BLOB_SIZE_BYTES, type Digest } from '@shoal/core';
import { NODE_FLAGS } from '@shoal/cli';
import {
  buildImage,
  makeTempDir,
  minimalEnv,
  placeSparseBlob,
  pushManifestWithLayer,
  pushImage,
  removeTempDir,
  requireTools,
  runCommand,
  servedBlobs,
  startRegistry,
  waitFor,
  type RunResult,
} from '@shoal/testkit';
import { startCluster } from './helpers/cluster.js';
import { counterByLabel } from './helpers/metrics.js';
import { SHOAL, spawnSupernode } from './helpers/processes.js';

/** The real `shoal preheat` executable (as bin/shoal.js runs it), configured by flags and SHOAL_* variables. */
function shoalPreheat(args: readonly string[], env: Record<string, string> = {}): Promise<RunResult> {
  return runCommand(process.execPath, [...NODE_FLAGS, SHOAL, 'preheat', ...args], { env: minimalEnv(env), timeoutMs: 60_000 });
}

/** A real docker-registry and a `shoal supernode` process pointed at it, stopped when the test ends. */
async function registryAndSupernode(t: ExecutionContext) {
  await requireTools(['docker-registry', 'skopeo']);
  const dir = await makeTempDir('shoal-preheat');
  t.teardown(() => removeTempDir(dir));
  const registry = await startRegistry();
  t.teardown(() => registry.stop());
  const supernode = await spawnSupernode(dir, registry.host);
  t.teardown(() => supernode.process.stop());
  return { dir, registry, supernode };
}

function blobPath(dataDir: string, digest: Digest): string {
  const hex = digest.slice('sha256:'.length);
  return join(dataDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}

// "Multi-arch indexes unsupported in preheat" is a known complaint about other
// systems. Here a real `shoal supernode` process is asked by the real CLI to
// preheat one platform of an OCI index: the registry's own access log must show
// every blob of that platform fetched once and none of the other platform's;
// a node's containerd pulling the image afterwards gets every blob from the
// swarm, and the registry serves no blob for it.
test('shoal preheat --platform linux/amd64 warms that platform only; a containerd pull then fetches no blob from the registry', async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const cluster = await startCluster({
    nodes: 1,
    supernodeUrl: async (registry, dir) => {
      const supernode = await spawnSupernode(dir, registry.host);
      return {
        url: supernode.url,
        close: async () => {
          await supernode.process.stop();
        },
      };
    },
  });
  t.teardown(() => cluster.close());
  const image = await buildImage({
    dir: join(cluster.dir, 'layout'),
    tag: 'v1',
    layers: [
      { sizeBytes: 2 * 1024 * 1024 + 77, seed: 'preheat-a' },
      { sizeBytes: 512 * 1024, seed: 'preheat-b' },
    ],
    platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }],
  });
  t.truthy(image.indexDigest, 'the tag names an index');
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: cluster.registry.host, repository: 'test/preheat' });
  const ref = `${cluster.registry.host}/test/preheat:v1`;
  const amd64 = image.platforms.find((p) => p.key === 'linux/amd64');
  const arm64 = image.platforms.find((p) => p.key === 'linux/arm64');
  if (amd64 === undefined || arm64 === undefined) throw new Error('two platforms expected');
  const amd64Blobs = [amd64.configDigest, ...amd64.layers.map((l) => l.digest)];
  const arm64Blobs = [arm64.configDigest, ...arm64.layers.map((l) => l.digest)];

  const preheat = await shoalPreheat([ref, '--platform', 'linux/amd64'], { SHOAL_SUPERNODE: cluster.supernode.url });
  t.is(preheat.code, 0, `${preheat.stdout}\n${preheat.stderr}`);
  t.regex(preheat.stdout, /^preheating .*test\/preheat:v1 \(linux\/amd64\) on http:\/\/127\.0\.0\.1:\d+: 3 blobs, 2\.5 MiB, job [0-9a-f-]{36}$/m);
  t.regex(preheat.stdout, /^ {2}3\/3 blobs, 2\.5\/2\.5 MiB$/m);
  t.regex(preheat.stdout, /^preheated .*test\/preheat:v1: 3 blobs, 2\.5 MiB in the supernode's cache/m);

  // The registry logs a request once it has sent the last byte: wait for the lines to land.
  await waitFor(async () => {
    const gets = await cluster.registry.blobGets();
    return amd64Blobs.every((d) => gets.get(d) === 1);
  }, { timeoutMs: 5_000, description: 'the registry logged the preheat' });
  const afterPreheat = await cluster.registry.requests();
  const getsAfterPreheat = await cluster.registry.blobGets();
  for (const d of amd64Blobs) t.is(getsAfterPreheat.get(d) ?? 0, 1, `linux/amd64 blob ${d} fetched once`);
  for (const d of arm64Blobs) t.is(getsAfterPreheat.get(d) ?? 0, 0, `linux/arm64 blob ${d} not fetched`);

  const node = cluster.nodes[0];
  if (node === undefined) throw new Error('a node expected');
  const pull = await node.containerd.pull(ref, { hostsDir: node.containerd.hostsDir, platform: 'linux/amd64', debug: true });
  t.true(await node.containerd.imageUnpacked(ref), 'the node has the image, unpacked');
  const served = servedBlobs(pull.requests());
  const proxyHost = new URL(node.agent.proxyUrl).host;
  for (const d of amd64Blobs) {
    const r = served.get(d);
    t.is(r?.host, proxyHost, `containerd got ${d} from the proxy`);
    // 'supernode' normally; a request containerd repeated is answered from the node's own copy ('local').
    const source = r?.headers?.['x-shoal-source'] ?? 'none';
    t.true(['supernode', 'peer', 'local'].includes(source), `${d} came from the swarm, not the registry (x-shoal-source: ${source})`);
  }
  const sources = await counterByLabel(node.agent.proxyUrl, 'shoal_proxy_blob_bytes_total', 'source');
  t.is(sources.get('upstream') ?? 0, 0, 'the proxy never fell back to the registry');

  // No blob GET of any kind reached the registry during the pull; the proxy's access checks are HEADs.
  const duringPull = (await cluster.registry.requests()).slice(afterPreheat.length);
  const blobGets = duringPull.filter((r) => r.method === 'GET' && r.uri.includes('/blobs/'));
  t.deepEqual(blobGets, [], 'no blob fetched from the registry by the pull');
  t.deepEqual(await cluster.registry.blobGets(), getsAfterPreheat);
  t.log(`during the pull the registry saw ${duringPull.filter((r) => r.method === 'HEAD' && r.uri.includes('/blobs/')).length} blob HEADs (access checks) and ${duringPull.filter((r) => r.uri.includes('/manifests/')).length} manifest requests`);
});

// The two ways a preheat fails for the user: the image is not there (the
// registry's 404, before any job starts), or a blob cannot be fetched (each
// failed blob named, the others still warmed). Both exit 1.
test('shoal preheat of a missing tag, or of an image with a blob gone from the registry, exits 1 saying what failed', async (t) => {
  const { dir, registry, supernode } = await registryAndSupernode(t);
  const image = await buildImage({ dir: join(dir, 'layout'), tag: 'v1', layers: [{ sizeBytes: 300 * 1024, seed: 'preheat-gone-a' }, { sizeBytes: 200 * 1024, seed: 'preheat-gone-b' }] });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: 'test/broken' });

  const missing = await shoalPreheat([`${registry.host}/test/broken:missing`, '--supernode', supernode.url]);
  t.is(missing.code, 1, missing.stderr);
  t.is(
    missing.stderr.trim(),
    `shoal preheat: supernode ${supernode.url} refused to preheat ${registry.host}/test/broken:missing: ` +
      `manifest unknown: ${registry.host}/test/broken:missing (the registry answered 404) [SHOAL_MANIFEST_UNKNOWN]`,
  );

  const gone = image.layers[1]?.digest;
  if (gone === undefined) throw new Error('two layers expected');
  await rm(blobPath(registry.dataDir, gone));
  const broken = await shoalPreheat([`${registry.host}/test/broken:v1`, '--supernode', supernode.url]);
  t.is(broken.code, 1, broken.stderr);
  t.regex(broken.stderr, new RegExp(`^failed ${gone} \\(0\\.2 MiB\\): blob ${gone} is unknown$`, 'm'));
  t.regex(broken.stderr, /^shoal preheat: preheat of .*test\/broken:v1 failed: 1 of 3 blobs could not be fetched into the supernode's cache$/m);
  t.is(broken.stderr.match(/^failed /gm)?.length, 1, 'only the gone blob is reported');
});

// An image may hold a layer larger than the swarm carries (64 GiB). Its preheat warms the
// rest, fetches nothing of that layer, and the CLI says which layer pulls will take from the
// registry. The layer is a sparse file in the real registry's storage, linked into the
// repository, so that the registry accepts a manifest naming it.
test('shoal preheat of an image with a layer over 64 GiB warms the rest and names that layer, which it never fetches', async (t) => {
  const { dir, registry, supernode } = await registryAndSupernode(t);
  const image = await buildImage({ dir: join(dir, 'layout'), tag: 'v1', layers: [{ sizeBytes: 300 * 1024, seed: 'preheat-huge-a' }] });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: 'test/huge' });

  const hugeSize = MAX_BLOB_SIZE_BYTES + 1;
  const huge = await placeSparseBlob(registry.dataDir, 'test/huge', hugeSize, 'a sparse layer over 64 GiB');
  await pushManifestWithLayer(registry.host, 'test/huge', 'v1', 'v2', { digest: huge, sizeBytes: hugeSize });

  const result = await shoalPreheat([`${registry.host}/test/huge:v2`, '--supernode', supernode.url]);
  t.is(result.code, 0, `${result.stdout}\n${result.stderr}`);
  t.regex(result.stdout, /^preheated .*test\/huge:v2: 2 blobs, 0\.3 MiB in the supernode's cache/m);
  t.true(
    result.stdout.includes(`  not preheated: ${huge} (65536.0 MiB), larger than the swarm carries; pulls take it from the registry\n`),
    result.stdout,
  );
  await waitFor(async () => (await registry.blobGets()).get(image.layers[0]?.digest as Digest) === 1, { timeoutMs: 5_000, description: 'the registry logged the preheat' });
  t.is((await registry.blobGets()).get(huge) ?? 0, 0, 'the registry never served the huge layer');
});

test('shoal preheat refuses an invalid --nodes or --platform with exit 2', async (t) => {
  const result = await shoalPreheat(['registry.test/app:v1', '--nodes', 'Node_A']);
  t.is(result.code, 2);
  t.regex(result.stderr, /--nodes: "Node_A" is not a Kubernetes node name/);
  const mixed = await shoalPreheat(['registry.test/app:v1', '--nodes', 'all,node-a']);
  t.is(mixed.code, 2);
  t.regex(mixed.stderr, /--nodes: all stands alone/);
  const env = await shoalPreheat(['registry.test/app:v1'], { SHOAL_NODES: 'node-a,-bad' });
  t.is(env.code, 2, 'SHOAL_NODES too');
  const platform = await shoalPreheat(['registry.test/app:v1', '--platform', 'amd64']);
  t.is(platform.code, 2);
  t.regex(platform.stderr, /--platform: expected OS\/ARCH\[\/VARIANT\]/);
});

// A private image: the client's credentials ride to the supernode, which
// fetches with them; without them the registry's refusal is reported; the
// credentials never appear in the supernode's log, even at debug level.
test('shoal preheat of a private image uses the client credentials and never logs them', async (t) => {
  await requireTools(['docker-registry', 'skopeo']);
  const credentials = { username: 'shoal', password: 'preheat-sekret-passw0rd' };
  const dir = await makeTempDir('shoal-preheat-private');
  t.teardown(() => removeTempDir(dir));
  const registry = await startRegistry({ htpasswd: credentials });
  t.teardown(() => registry.stop());
  const { process: supernode, url } = await spawnSupernode(dir, registry.host, 'sn', { SHOAL_LOG_LEVEL: 'debug' });
  t.teardown(() => supernode.stop());
  const image = await buildImage({ dir: join(dir, 'layout'), tag: 'v1', layers: [{ sizeBytes: 256 * 1024, seed: 'preheat-private' }] });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: 'private/app', credentials });
  const ref = `${registry.host}/private/app:v1`;

  const anonymous = await shoalPreheat([ref, '--supernode', url]);
  t.is(anonymous.code, 1);
  t.regex(anonymous.stderr, /registry answered 401 for manifest .*private\/app:v1 \(no registry credentials were given\)/);

  const credentialsFile = join(dir, 'registry-credentials');
  await writeFile(credentialsFile, `${credentials.username}:${credentials.password}\n`, { mode: 0o600 });
  const withCredentials = await shoalPreheat([ref, '--registry-credentials-file', credentialsFile], { SHOAL_SUPERNODE: url });
  t.is(withCredentials.code, 0, withCredentials.stderr);
  t.regex(withCredentials.stdout, /preheated .*private\/app:v1: 2 blobs/);
  await waitFor(async () => (await registry.blobGets()).get(image.layers[0]?.digest as Digest) === 1, { timeoutMs: 5_000, description: 'the layer fetched' });

  const logs = `${await supernode.stdout()}${await supernode.stderr()}`;
  t.regex(logs, /preheat done/, 'the supernode logged the job');
  const basic = Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64');
  t.false(logs.includes(credentials.password), 'no password in the log');
  t.false(logs.includes(basic), 'no Basic credential in the log');
});
