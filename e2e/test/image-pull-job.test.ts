import anyTest, { type TestFn } from 'ava';
import { join } from 'node:path';
import { request } from 'undici';
import { API_PREFIX, MAX_BLOB_SIZE_BYTES, type Digest } from '@shoal/core';
import { startNodeAgent, startSupernode, type Running, type RunningNodeAgent } from '@shoal/cli';
import { buildImage, makeTempDir, placeSparseBlob, pushImage, pushManifestWithLayer, removeTempDir, requireTools, startRegistry, waitFor, type RunningRegistry } from '@shoal/testkit';
import type { ImagePullJobStatus } from '@shoal/supernode';
import { FakeKubeApi, type FakeObject } from '@shoal/supernode/testing/fake-kube-api';
import { testLogger } from './helpers/cluster.js';
import { metricValue } from './helpers/metrics.js';

// The ImagePullJob controller, end to end: a FAKE Kubernetes API server (no
// real one can run here) holds the ImagePullJobs, Nodes and Secrets; the
// supernode (with --image-pull-jobs, reading a kubeconfig that points at the
// fake), the node agents and the docker-registry are real. Tests run in
// order on one small cluster: node-a, node-b and node-c, and node-late that
// registers only during the `Never` test.

interface Ctx {
  dir: string;
  kube: FakeKubeApi;
  registry: RunningRegistry;
  supernode: Running;
  agents: Map<string, RunningNodeAgent>;
  ref: string;
  blobs: string[];
  startAgent(name: string): Promise<RunningNodeAgent>;
  closers: Array<() => Promise<void>>;
}

const test = anyTest as TestFn<Ctx>;
const NS = 'default';
/** Small intervals so the controller reacts within test time. Milliseconds. */
const CONTROLLER_TIMING = { pollMs: 50, resyncMs: 200, retryDelayMs: 50, watchBackoffMs: 50, maxWatchBackoffMs: 200 };

async function registeredNodeNames(supernodeUrl: string): Promise<string[]> {
  const res = await request(`${supernodeUrl}${API_PREFIX}/status`);
  const status = (await res.body.json()) as { peers: Array<{ nodeName?: string }> };
  return status.peers.map((p) => p.nodeName ?? '').sort();
}

type Status = ImagePullJobStatus;

function statusOf(obj: FakeObject | undefined): Status {
  return (obj?.status ?? {}) as Status;
}

async function waitForStatus(t: { context: Ctx }, name: string, check: (s: Status) => boolean, description: string): Promise<Status> {
  let last: Status = {};
  await waitFor(() => check((last = statusOf(t.context.kube.getJob(NS, name)))), { timeoutMs: 15_000, intervalMs: 25, description: `${name}: ${description}` }).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; last status ${JSON.stringify(last)}`);
  });
  return last;
}

test.before(async (t) => {
  await requireTools(['docker-registry', 'skopeo']);
  const dir = await makeTempDir('shoal-ipj');
  const closers: Array<() => Promise<void>> = [];
  t.context.closers = closers;
  t.context.dir = dir;
  const log = testLogger();
  const kube = await FakeKubeApi.start();
  closers.push(() => kube.close());
  const registry = await startRegistry({});
  closers.push(() => registry.stop());
  const image = await buildImage({
    dir: join(dir, 'layout'),
    tag: 'v1',
    layers: [
      { sizeBytes: 1024 * 1024 + 13, seed: 'ipj-a' },
      { sizeBytes: 200 * 1024, seed: 'ipj-b' },
    ],
  });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: 'test/ipj' });
  const kubeconfig = join(dir, 'kubeconfig');
  await kube.writeKubeconfig(kubeconfig);
  const supernode = await startSupernode(log.child({ role: 'supernode' }), {
    listen: '127.0.0.1:0',
    dataDir: join(dir, 'supernode'),
    plainHttpHosts: [registry.host],
    token: undefined,
    imagePullJobs: { kubeconfig, namespace: undefined, init: CONTROLLER_TIMING },
  });
  closers.push(() => supernode.close());
  const agents = new Map<string, RunningNodeAgent>();
  const startAgent = async (name: string): Promise<RunningNodeAgent> => {
    const agent = await startNodeAgent(log.child({ role: name }), {
      supernodeUrls: [supernode.url],
      peerListen: '127.0.0.1:0',
      advertise: undefined,
      dataDir: join(dir, name),
      token: undefined,
      proxyListen: '127.0.0.1:0',
      plainHttpHosts: [registry.host],
      nodeName: name,
    });
    closers.push(() => agent.close());
    agents.set(name, agent);
    return agent;
  };
  for (const name of ['node-a', 'node-b', 'node-c']) await startAgent(name);
  await waitFor(async () => (await registeredNodeNames(supernode.url)).join(',') === 'node-a,node-b,node-c', { timeoutMs: 10_000, description: 'three peers registered' });
  Object.assign(t.context, { kube, registry, supernode, agents, startAgent, ref: `${registry.host}/test/ipj:v1`, blobs: [image.configDigest, ...image.layers.map((l) => l.digest)] });
});

test.after.always(async (t) => {
  for (const c of (t.context.closers ?? []).reverse()) await c().catch(() => undefined);
  if (t.context.dir !== undefined) await removeTempDir(t.context.dir);
});

async function cachedBlobs(t: { context: Ctx }, node: string): Promise<number> {
  const agent = t.context.agents.get(node);
  if (agent === undefined) throw new Error(`no agent ${node}`);
  return metricValue(agent.peerUrl, 'shoal_peer_cache_blobs');
}

test.serial('an ImagePullJob naming 2 of 3 nodes fills exactly those 2 stores; status goes to desired 2, succeeded 2, completionTime set', async (t) => {
  const { kube, ref } = t.context;
  kube.createJob(NS, 'two-nodes', { image: ref, selector: { names: ['node-a', 'node-b'] }, parallelism: 1 });
  const s = await waitForStatus(t, 'two-nodes', (s) => s.completionTime !== undefined, 'completed');
  t.is(s.desired, 2);
  t.is(s.succeeded, 2);
  t.is(s.failed, 0);
  t.is(s.active, 0);
  t.deepEqual(s.failedNodes, []);
  t.regex(s.message ?? '', /2 of 2 nodes filled/);
  t.truthy(s.startTime);
  t.true(Date.parse(s.completionTime ?? '') >= Date.parse(s.startTime ?? ''));
  // Progress was written as it went: a patch with one node filled and the other not yet.
  const patches = kube.statusPatches(NS, 'two-nodes').map((p) => p.status as Status);
  t.true(patches.some((p) => p.succeeded === 1 && p.completionTime === undefined), `a progress patch: ${JSON.stringify(patches)}`);
  t.true(kube.requests.filter((r) => r.method === 'PATCH').every((r) => r.contentType === 'application/merge-patch+json'));
  t.is(await cachedBlobs(t, 'node-a'), t.context.blobs.length, "node-a's store holds every blob");
  t.is(await cachedBlobs(t, 'node-b'), t.context.blobs.length, "node-b's store holds every blob");
  t.is(await cachedBlobs(t, 'node-c'), 0, "node-c's store holds nothing");
});

test.serial('a job whose image does not exist fails after backoffLimit retries, with the registry\'s reason', async (t) => {
  const { kube, registry } = t.context;
  kube.createJob(NS, 'no-such-image', { image: `${registry.host}/test/missing:v9`, selector: { names: ['node-c'] }, pullPolicy: { backoffLimit: 2, timeoutSeconds: 20 } });
  const s = await waitForStatus(t, 'no-such-image', (s) => s.completionTime !== undefined, 'completed');
  t.is(s.desired, 1);
  t.is(s.succeeded, 0);
  t.is(s.failed, 1);
  t.deepEqual(s.failedNodes, ['node-c']);
  t.regex(s.message ?? '', /node-c: manifest unknown: .*test\/missing:v9 \(the registry answered 404\) \(after 3 attempts\)/);
  const manifestGets = (await registry.requests()).filter((r) => r.method === 'GET' && r.uri.includes('/test/missing/manifests/'));
  t.is(manifestGets.length, 3, 'one try and two retries');
  t.is(await cachedBlobs(t, 'node-c'), 0);
});

test.serial('an invalid spec is not acted on: status.message says what is wrong', async (t) => {
  const { kube, ref } = t.context;
  const before = kube.requests.length;
  kube.createJob(NS, 'invalid', { image: ref, parallelism: -1, completionPolicy: { type: 'Sometimes' } });
  const s = await waitForStatus(t, 'invalid', (s) => s.message !== undefined, 'a message');
  t.regex(s.message ?? '', /^invalid spec: /);
  t.regex(s.message ?? '', /spec\.selector is required/);
  t.regex(s.message ?? '', /spec\.parallelism must be an integer from 0 to 1000, not -1/);
  t.regex(s.message ?? '', /spec\.completionPolicy\.type must be Always or Never, not "Sometimes"/);
  t.is(s.desired, 0);
  t.is(s.completionTime, undefined);
  t.false(kube.requests.slice(before).some((r) => r.path.startsWith('/api/v1/nodes')), 'no node was looked at');
  // Fixing the spec (a new generation) makes the controller act on it.
  kube.updateJobSpec(NS, 'invalid', { image: ref, selector: { names: ['node-a'] } });
  const fixed = await waitForStatus(t, 'invalid', (s) => s.completionTime !== undefined, 'completed after the fix');
  t.is(fixed.succeeded, 1);
  t.notRegex(fixed.message ?? '', /invalid/);
});

test.serial('ttlSecondsAfterFinished deletes the job after it finished', async (t) => {
  const { kube, ref } = t.context;
  kube.createJob(NS, 'short-lived', { image: ref, selector: { names: ['node-b'] }, completionPolicy: { type: 'Always', ttlSecondsAfterFinished: 1 } });
  const s = await waitForStatus(t, 'short-lived', (s) => s.completionTime !== undefined, 'completed');
  t.is(s.succeeded, 1);
  t.truthy(kube.getJob(NS, 'short-lived'), 'still there right after completion');
  await waitFor(() => kube.getJob(NS, 'short-lived') === undefined, { timeoutMs: 5_000, description: 'deleted after its TTL' });
  const deleted = kube.requests.find((r) => r.method === 'DELETE' && r.path.endsWith('/namespaces/default/imagepulljobs/short-lived'));
  t.truthy(deleted, 'the controller deleted it');
});

test.serial('a label selector fills matching nodes with a peer; a matching node without one fails with a clear reason; the watch survives a dropped connection and failing lists', async (t) => {
  const { kube, ref } = t.context;
  kube.addNode('node-a', { pool: 'warm' });
  kube.addNode('node-b', { pool: 'cold' });
  kube.addNode('node-x', { pool: 'warm' });
  // The API server drops every watch and fails the next two lists: the controller backs off and lists again.
  kube.failLists = 2;
  kube.closeWatches();
  kube.createJob(NS, 'by-label', { image: ref, selector: { matchLabels: { pool: 'warm' } }, parallelism: 2 });
  const s = await waitForStatus(t, 'by-label', (s) => s.completionTime !== undefined, 'completed');
  t.is(kube.failLists, 0, 'both failing lists were retried');
  t.is(s.desired, 2);
  t.is(s.succeeded, 1);
  t.is(s.failed, 1);
  t.deepEqual(s.failedNodes, ['node-x']);
  t.regex(s.message ?? '', /node-x: no Shoal peer is registered with this node name/);
  // One watch per kind: ImagePullJobs and ImageListPullJobs.
  await waitFor(() => kube.openWatches === 2, { timeoutMs: 5_000, description: 'watching again' });
});

test.serial('a Never job keeps going: a node that registers later is filled too', async (t) => {
  const { kube, ref } = t.context;
  kube.createJob(NS, 'forever', { image: ref, selector: { names: ['node-c', 'node-late'] }, completionPolicy: { type: 'Never' }, parallelism: 2 });
  const early = await waitForStatus(t, 'forever', (s) => s.succeeded === 1 && s.failed === 1, 'node-c filled, node-late waiting');
  t.deepEqual(early.failedNodes, ['node-late']);
  t.regex(early.message ?? '', /node-late: no Shoal peer is registered/);
  await t.context.startAgent('node-late');
  const late = await waitForStatus(t, 'forever', (s) => s.succeeded === 2, 'node-late filled');
  t.is(late.desired, 2);
  t.is(late.failed, 0);
  t.is(late.completionTime, undefined, 'a Never job never completes');
  t.is(await cachedBlobs(t, 'node-late'), t.context.blobs.length, "node-late's store holds every blob");
  t.is(await cachedBlobs(t, 'node-c'), t.context.blobs.length, "node-c's store holds every blob");
});

// An image with a layer larger than the swarm carries (64 GiB): the job warms the rest and
// succeeds, and its status (pruned by the fake to the chart's CRD, as an API server would)
// names that layer, which containerd will take from the registry; one Warning Event says so.
// The layer is a sparse file in the real registry's storage, linked into the repository.
test.serial('a job whose image has a layer over 64 GiB warms the rest and names that layer in status.tooLarge and a Warning Event', async (t) => {
  const { kube, registry, dir } = t.context;
  const image = await buildImage({ dir: join(dir, 'huge-layout'), tag: 'v1', layers: [{ sizeBytes: 100 * 1024, seed: 'ipj-huge-a' }] });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: 'test/ipj-huge' });
  const hugeSize = MAX_BLOB_SIZE_BYTES + 1;
  const huge = await placeSparseBlob(registry.dataDir, 'test/ipj-huge', hugeSize, 'a sparse layer over 64 GiB');
  await pushManifestWithLayer(registry.host, 'test/ipj-huge', 'v1', 'v2', { digest: huge, sizeBytes: hugeSize });

  kube.createJob(NS, 'huge-layer', { image: `${registry.host}/test/ipj-huge:v2`, selector: { names: ['node-b'] } });
  const s = await waitForStatus(t, 'huge-layer', (s) => s.completionTime !== undefined, 'completed');
  t.is(s.succeeded, 1, JSON.stringify(s));
  t.deepEqual(s.tooLarge, [{ digest: huge, sizeBytes: hugeSize }]);
  t.true((s.message ?? '').includes(`1 blob larger than the swarm carries (64 GiB) not preheated; pulls take it from the registry: ${huge} (${hugeSize} bytes)`), s.message);
  const warnings = kube.eventsFor(NS, 'huge-layer').filter((e) => e.reason === 'BlobTooLargeForSwarm');
  t.is(warnings.length, 1, JSON.stringify(warnings));
  t.is(warnings[0]?.type, 'Warning');
  t.true(String(warnings[0]?.message).includes(huge), JSON.stringify(warnings));
  t.is((await registry.blobGets()).get(huge as Digest) ?? 0, 0, 'the registry never served the huge layer');
});
