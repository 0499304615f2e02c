import anyTest, { type TestFn } from 'ava';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { API_PREFIX } from '@shoal/core';
import { startNodeAgent, startSupernode, writeContainerdConfig, type Running, type RunningNodeAgent } from '@shoal/cli';
import { buildImage, makeTempDir, pushImage, removeTempDir, requireTools, startContainerd, startRegistry, waitFor, type RunningContainerd, type RunningRegistry } from '@shoal/testkit';
import { FakeKubeApi, type FakeJobKind } from '@shoal/supernode/testing/fake-kube-api';
import { testLogger } from './helpers/cluster.js';

// Prewarm all the way into containerd. Real containerd 1.6 with its CRI plugin
// on (one per node, each with its own root, state and socket; config_path is
// the certs.d dir `shoal containerd-config` wrote, pointing at that node's
// proxy), real node agents with --containerd-socket, a real supernode running
// the controller, a real docker-registry. Only the Kubernetes API is a FAKE
// (FakeKubeApi: no kube-apiserver runs here). Before this, an ImagePullJob
// stopped at Shoal's store: containerd's k8s.io namespace stayed empty.

interface Node {
  agent: RunningNodeAgent;
  containerd: RunningContainerd;
}

interface Ctx {
  dir: string;
  kube: FakeKubeApi;
  registry: RunningRegistry;
  supernode: Running;
  nodes: Map<string, Node>;
  ref: string;
  ref2: string;
  blobs: string[];
  startNode(name: string, options?: { cri?: boolean }): Promise<Node>;
  closers: Array<() => Promise<void>>;
}

const test = anyTest as TestFn<Ctx>;
const NS = 'default';
const CONTROLLER_TIMING = { pollMs: 50, resyncMs: 200, retryDelayMs: 50, watchBackoffMs: 50, maxWatchBackoffMs: 200 };

interface Progress {
  bytesDone: number;
  bytesTotal: number;
  nodes: Record<string, number>;
}
type Status = { desired?: number; active?: number; succeeded?: number; failed?: number; failedNodes?: string[]; message?: string; completionTime?: string; progress?: Progress };

async function waitForStatus(t: { context: Ctx }, name: string, check: (s: Status) => boolean, description: string, kind: FakeJobKind = 'ImagePullJob'): Promise<Status> {
  let last: Status = {};
  await waitFor(() => check((last = (t.context.kube.getJob(NS, name, kind)?.status ?? {}) as Status)), { timeoutMs: 60_000, intervalMs: 50, description: `${name}: ${description}` }).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; last status ${JSON.stringify(last)}`);
  });
  return last;
}

async function registeredNodeNames(supernodeUrl: string): Promise<string[]> {
  const res = await request(`${supernodeUrl}${API_PREFIX}/status`);
  const status = (await res.body.json()) as { peers: Array<{ nodeName?: string }> };
  return status.peers.map((p) => p.nodeName ?? '').sort();
}

test.before(async (t) => {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const dir = await makeTempDir('shoal-prewarm');
  const closers: Array<() => Promise<void>> = [];
  Object.assign(t.context, { dir, closers });
  const log = testLogger();
  const kube = await FakeKubeApi.start();
  closers.push(() => kube.close());
  const registry = await startRegistry({});
  closers.push(() => registry.stop());
  const image = await buildImage({ dir: join(dir, 'layout'), tag: 'v1', layers: [{ sizeBytes: 3 * 1024 * 1024 + 7, seed: 'prewarm-a' }, { sizeBytes: 300 * 1024, seed: 'prewarm-b' }] });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: 'test/prewarm' });
  const image2 = await buildImage({ dir: join(dir, 'layout2'), tag: 'v1', layers: [{ sizeBytes: 512 * 1024, seed: 'prewarm-second' }] });
  await pushImage({ layoutDir: image2.layoutDir, tag: 'v1', registry: registry.host, repository: 'test/second' });
  const kubeconfig = join(dir, 'kubeconfig');
  await kube.writeKubeconfig(kubeconfig);
  const supernode = await startSupernode(log.child({ role: 'supernode' }), {
    listen: '127.0.0.1:0',
    dataDir: join(dir, 'supernode'),
    plainHttpHosts: [registry.host],
    token: undefined,
    imagePullJobs: { kubeconfig, namespace: undefined, init: CONTROLLER_TIMING, leaderElectionNamespace: 'shoal-system', leaderElection: { retryPeriodMs: 100 } },
  });
  closers.push(() => supernode.close());
  const nodes = new Map<string, Node>();
  const startNode = async (name: string, options: { cri?: boolean } = {}): Promise<Node> => {
    const certsDir = join(dir, `${name}-certs.d`);
    await mkdir(certsDir, { recursive: true });
    const containerd = await startContainerd({ name: `${name}-containerd`, ...(options.cri === false ? {} : { cri: { configPath: certsDir } }) });
    closers.push(() => containerd.stop());
    const agent = await startNodeAgent(log.child({ role: name }), {
      supernodeUrls: [supernode.url],
      peerListen: '127.0.0.1:0',
      advertise: undefined,
      dataDir: join(dir, name),
      token: undefined,
      proxyListen: '127.0.0.1:0',
      plainHttpHosts: [registry.host],
      nodeName: name,
      containerdSocket: containerd.socket,
    });
    closers.push(() => agent.close());
    // What the DaemonSet's init container does: point containerd at this node's proxy (no restart needed).
    await writeContainerdConfig({ certsDir, proxyUrl: agent.proxyUrl, registries: [registry.host], plainHttpHosts: [registry.host] });
    const node = { agent, containerd };
    nodes.set(name, node);
    return node;
  };
  Object.assign(t.context, { kube, registry, supernode, nodes, startNode, ref: `${registry.host}/test/prewarm:v1`, ref2: `${registry.host}/test/second:v1`, blobs: [image.configDigest, ...image.layers.map((l) => l.digest)] });
  await startNode('node-a');
  await startNode('node-b');
  await startNode('node-refuses', { cri: false });
  await waitFor(async () => (await registeredNodeNames(supernode.url)).join(',') === 'node-a,node-b,node-refuses', { timeoutMs: 10_000, description: 'three peers registered' });
  // One replica leads: the Lease names it.
  await waitFor(() => kube.getLease('shoal-system', 'shoal-image-pull-jobs') !== undefined, { timeoutMs: 10_000, description: 'the leader Lease' });
});

test.after.always(async (t) => {
  for (const c of (t.context.closers ?? []).reverse()) await c().catch(() => undefined);
  if (t.context.dir !== undefined) await removeTempDir(t.context.dir);
});

function node(t: { context: Ctx }, name: string): Node {
  const n = t.context.nodes.get(name);
  if (n === undefined) throw new Error(`no node ${name}`);
  return n;
}

test.serial('an ImagePullJob leaves the image unpacked in containerd\'s k8s.io namespace on both nodes; the registry sent each blob once', async (t) => {
  const { kube, ref, registry, blobs } = t.context;
  for (const name of ['node-a', 'node-b']) t.false((await node(t, name).containerd.criImages()).has(ref), `${name}: not in containerd before`);
  kube.createJob(NS, 'both', { image: ref, selector: { names: ['node-a', 'node-b'] }, parallelism: 2 });
  const s = await waitForStatus(t, 'both', (s) => s.completionTime !== undefined, 'completed');
  t.is(s.succeeded, 2, JSON.stringify(s));
  t.is(s.failed, 0);
  for (const name of ['node-a', 'node-b']) {
    const images = await node(t, name).containerd.criImages();
    t.deepEqual(images.get(ref), { unpacked: true }, `${name}: ctr -n k8s.io images ls lists it, unpacked: ${JSON.stringify([...images])}`);
  }
  // Every blob left the registry once for the whole cluster: containerd's pulls were served by the nodes' proxies from local disk.
  const gets = await registry.blobGets();
  for (const digest of blobs) t.is(gets.get(digest as never) ?? 0, 1, `${digest} fetched once`);
  // Byte progress: every byte of both nodes, and the nodes by phase.
  t.truthy(s.progress);
  t.true((s.progress?.bytesTotal ?? 0) > 2 * 3 * 1024 * 1024, JSON.stringify(s.progress));
  t.is(s.progress?.bytesDone, s.progress?.bytesTotal);
  t.like(s.progress?.nodes, { pending: 0, filling: 0, pulling: 0, succeeded: 2, failed: 0, storeOnly: 0 });
  const events = kube.eventsFor(NS, 'both');
  t.deepEqual(events.map((e) => `${e.type} ${e.reason}`).sort(), ['Normal PullImageSucceed', 'Normal PullImageSucceed']);
  t.true(events.every((e) => /image pulled into containerd/.test(e.message)), JSON.stringify(events));
});

test.serial('a second IfNotPresent job makes no pull: containerd already has the image', async (t) => {
  const { kube, ref, registry } = t.context;
  const before = (await registry.requests()).length;
  const ids = await Promise.all(['node-a', 'node-b'].map(async (n) => (await node(t, n).containerd.ctr(['-n', 'k8s.io', 'images', 'ls'])).stdout));
  kube.createJob(NS, 'again', { image: ref, selector: { names: ['node-a', 'node-b'] }, parallelism: 2, imagePullPolicy: 'IfNotPresent' });
  const s = await waitForStatus(t, 'again', (s) => s.completionTime !== undefined, 'completed');
  t.is(s.succeeded, 2, JSON.stringify(s));
  const events = kube.eventsFor(NS, 'again');
  t.is(events.length, 2);
  t.true(events.every((e) => e.reason === 'PullImageSucceed' && /already in containerd \(IfNotPresent\): not pulled/.test(e.message)), JSON.stringify(events));
  const after = (await registry.requests()).slice(before);
  t.deepEqual(after.filter((r) => r.digest !== undefined && /\/blobs\//.test(r.uri)), [], 'no blob asked of the registry');
  const idsAfter = await Promise.all(['node-a', 'node-b'].map(async (n) => (await node(t, n).containerd.ctr(['-n', 'k8s.io', 'images', 'ls'])).stdout));
  t.deepEqual(idsAfter, ids, 'containerd\'s images unchanged');
});

test.serial('a node whose containerd refuses the pull fails with the runtime\'s reason and a PullImageFailed event', async (t) => {
  const { kube, ref } = t.context;
  kube.createJob(NS, 'refused', { image: ref, selector: { names: ['node-refuses'] }, pullPolicy: { backoffLimit: 1 } });
  const s = await waitForStatus(t, 'refused', (s) => s.completionTime !== undefined, 'completed');
  t.is(s.succeeded, 0);
  t.is(s.failed, 1);
  t.deepEqual(s.failedNodes, ['node-refuses']);
  t.regex(s.message ?? '', /node-refuses: the container runtime could not pull the image: CRI PullImage failed: UNIMPLEMENTED.*\(after 2 attempts\)/);
  const events = kube.eventsFor(NS, 'refused');
  t.is(events.length, 1, JSON.stringify(events));
  t.is(events[0]?.type, 'Warning');
  t.is(events[0]?.reason, 'PullImageFailed');
  t.regex(events[0]?.message ?? '', /node-refuses: .*CRI PullImage failed/);
  // The store was still filled: the node's proxy can serve the image.
  t.like(s.progress, { bytesDone: s.progress?.bytesTotal });
});

test.serial('an ImageListPullJob pulls each of its images into containerd', async (t) => {
  const { kube, ref, ref2 } = t.context;
  kube.createJob(NS, 'list', { images: [ref, ref2], selector: { names: ['node-b'] } }, 'ImageListPullJob');
  const s = await waitForStatus(t, 'list', (s) => s.completionTime !== undefined, 'completed', 'ImageListPullJob');
  t.is(s.succeeded, 1, JSON.stringify(s));
  const images = await node(t, 'node-b').containerd.criImages();
  t.deepEqual(images.get(ref2), { unpacked: true });
  t.deepEqual(images.get(ref), { unpacked: true });
  const events = kube.eventsFor(NS, 'list', 'ImageListPullJob');
  t.is(events.length, 1);
  t.regex(events[0]?.message ?? '', /test\/second:v1 image pulled into containerd/);
});

test.serial('a standing (Never) podSelector job warms a node that registers after the job started: the image is in its containerd before a pod needs it', async (t) => {
  const { kube, ref2 } = t.context;
  kube.addPod(NS, 'web-1', { app: 'web' }, 'node-a');
  kube.addPod(NS, 'web-2', { app: 'web' }, 'node-late');
  kube.addPod(NS, 'web-3', { app: 'web' }, undefined); // not scheduled: no node
  kube.addPod(NS, 'db-1', { app: 'db' }, 'node-b');
  kube.createJob(NS, 'standing', { image: ref2, podSelector: { matchLabels: { app: 'web' } }, completionPolicy: { type: 'Never' }, parallelism: 2 });
  const early = await waitForStatus(t, 'standing', (s) => s.succeeded === 1 && s.failed === 1, 'node-a done, node-late without a peer');
  t.deepEqual(early.failedNodes, ['node-late']);
  t.false((await node(t, 'node-b').containerd.criImages()).has(`${ref2}-not-selected`));
  const late = await t.context.startNode('node-late');
  const s = await waitForStatus(t, 'standing', (s) => s.succeeded === 2, 'node-late warmed');
  t.is(s.completionTime, undefined, 'a Never job never completes');
  t.deepEqual((await late.containerd.criImages()).get(ref2), { unpacked: true });
  t.true(kube.requests.some((r) => r.path.startsWith('/api/v1/namespaces/default/pods?') && r.path.includes('labelSelector=app%3Dweb')), 'pods listed by label');
});
