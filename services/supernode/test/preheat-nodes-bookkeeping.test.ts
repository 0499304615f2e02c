/**
 * Preheat into nodes, the supernode's side: a request naming nodes is checked
 * against the live peers at once (an unknown name is a 404 listing the known
 * ones, before the registry is asked anything); once the cache holds the
 * blobs, each chosen peer gets a `prefetch` frame on its WebSocket, and the
 * job follows each node from its `prefetched` answers. A node that
 * disconnects, answers a failure, or goes silent past the timeout is failed
 * for its remaining blobs; the job ends only when every node has.
 * Real supernode (real PieceStore, real WebSocket) on 127.0.0.1:0 in front of
 * a FAKE registry client; the peers are `ws` clients speaking the protocol.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import WebSocket from 'ws';
import { request } from 'undici';
import { API_PREFIX, MediaType, parseWire, PreheatJobSchema, SupernodeMessageSchema, type PeerMessage, type PreheatJob, type SupernodeMessage } from '@shoal/core';
import type { RegistryRequest, RegistryResponse } from '@shoal/registry-client';
import { PEERS_WS_PATH } from '../src/index.js';
import { digestOf, FakeRegistryClient, startSupernode } from './helpers/fixture.js';

const REGISTRY = 'registry.test';
const config = Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64' }));
const layer = randomBytes(300 * 1024);
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: digestOf(config), size: config.length },
    layers: [{ mediaType: MediaType.ociLayerGzip, digest: digestOf(layer), size: layer.length }],
  }),
);
const BLOBS = [digestOf(config), digestOf(layer)];

/** Node states without their byte counts (checked by the prewarm tests). */
function withoutBytes<T extends { bytesDone?: number; bytesTotal?: number }>(nodes: readonly T[] | undefined): Array<Omit<T, 'bytesDone' | 'bytesTotal'>> {
  return (nodes ?? []).map(({ bytesDone: _d, bytesTotal: _t, ...rest }) => rest);
}

/** The fixture's FAKE registry, with one manifest: test/app:v1. */
class ManifestRegistry extends FakeRegistryClient {
  manifestRequests = 0;
  override async request(r: RegistryRequest): Promise<RegistryResponse> {
    if (r.path !== '/v2/test/app/manifests/v1') return super.request(r);
    this.manifestRequests++;
    return { statusCode: 200, headers: { 'content-type': MediaType.ociManifest }, body: Readable.from([manifest]) };
  }
}

interface FakePeer {
  ws: WebSocket;
  received: SupernodeMessage[];
  send(message: PeerMessage): void;
}

async function connectPeer(t: ExecutionContext, url: string, peerId: string, nodeName: string | undefined): Promise<FakePeer> {
  const ws = new WebSocket(`${url.replace('http', 'ws')}${PEERS_WS_PATH}`);
  t.teardown(() => ws.terminate());
  const received: SupernodeMessage[] = [];
  ws.on('message', (data: Buffer) => received.push(parseWire(SupernodeMessageSchema, JSON.parse(data.toString('utf8')), 'supernode message')));
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const send = (message: PeerMessage): void => ws.send(JSON.stringify(message));
  send({ type: 'register', peerId, advertiseUrl: `http://127.0.0.1:${1 + (peerId.length % 1000)}`, ...(nodeName === undefined ? {} : { nodeName }) });
  await until(() => received.some((m) => m.type === 'registered'));
  return { ws, received, send };
}

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`condition not reached in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function setUp(t: ExecutionContext, nodeTimeoutMs = 60_000) {
  const supernode = await startSupernode({ blobs: [config, layer], init: { preheat: { nodeTimeoutMs } } });
  const registry = new ManifestRegistry([config, layer]);
  // The fixture built the app around its own FakeRegistryClient: give that one the manifest.
  supernode.registry.request = (r) => registry.request(r);
  t.teardown(() => supernode.close());
  const post = async (body: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const res = await request(`${supernode.url}${API_PREFIX}/preheat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
  };
  const job = async (id: string): Promise<PreheatJob> => {
    const res = await request(`${supernode.url}${API_PREFIX}/preheat/${id}`);
    return parseWire(PreheatJobSchema, await res.body.json(), 'job');
  };
  const finished = async (id: string): Promise<PreheatJob> => {
    let last = await job(id);
    for (let i = 0; i < 1000 && last.state === 'running'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      last = await job(id);
    }
    return last;
  };
  return { supernode, registry, post, job, finished };
}

const prefetches = (peer: FakePeer) => peer.received.filter((m): m is Extract<SupernodeMessage, { type: 'prefetch' }> => m.type === 'prefetch');

test('an unknown node name is a 404 listing the known nodes, before the registry is asked anything; status shows node names', async (t) => {
  const { supernode, registry, post } = await setUp(t);
  await connectPeer(t, supernode.url, 'peer-a', 'node-a');
  await connectPeer(t, supernode.url, 'peer-b', 'node-b');
  await connectPeer(t, supernode.url, 'peer-old', undefined); // a peer from before node names
  const res = await post({ image: `${REGISTRY}/test/app:v1`, nodes: ['node-a', 'node-z'] });
  t.is(res.status, 404);
  t.is(res.json.code, 'SHOAL_PREHEAT_NODE_UNKNOWN');
  t.is(res.json.message, 'unknown node node-z: no live peer registered with that name (known nodes: node-a, node-b, peer-old)');
  t.is(registry.manifestRequests, 0);
  t.is(supernode.registry.calls, 0);
  const status = (await (await request(`${supernode.url}${API_PREFIX}/status`)).body.json()) as { peers: Array<{ peerId: string; nodeName?: string }> };
  t.deepEqual(status.peers.map((p) => [p.peerId, p.nodeName]).sort(), [['peer-a', 'node-a'], ['peer-b', 'node-b'], ['peer-old', undefined]]);
  const bad = await post({ image: `${REGISTRY}/test/app:v1`, nodes: ['Node_A'] });
  t.is(bad.status, 400, 'a name that is no node name is refused by the schema');
});

test('each named node gets one prefetch; a node answering every blob is done, one that disconnects is failed, and the job fails', async (t) => {
  const { supernode, post, job, finished } = await setUp(t);
  const a = await connectPeer(t, supernode.url, 'peer-a', 'node-a');
  const b = await connectPeer(t, supernode.url, 'peer-b', 'node-b');
  const c = await connectPeer(t, supernode.url, 'peer-c', 'node-c');
  const res = await post({ image: `${REGISTRY}/test/app:v1`, nodes: ['node-a', 'node-b'] });
  t.is(res.status, 202, JSON.stringify(res.json));
  const id = res.json.id as string;
  await until(() => prefetches(a).length === 1 && prefetches(b).length === 1);
  const frame = prefetches(a)[0];
  t.is(frame?.job, id);
  t.deepEqual(frame?.blobs.map((x) => x.digest), BLOBS);
  t.deepEqual(frame?.blobs.map((x) => [x.registry, x.repository]), [[REGISTRY, 'test/app'], [REGISTRY, 'test/app']]);
  t.deepEqual(frame?.blobs.map((x) => x.sizeBytes), [config.length, layer.length]);
  t.is(prefetches(c).length, 0, 'a node not named gets nothing');
  const running = await job(id);
  t.is(running.state, 'running');
  t.deepEqual(running.nodes?.map((n) => [n.name, n.state, n.blobsDone, n.blobsTotal]), [['node-a', 'running', 0, 2], ['node-b', 'running', 0, 2]]);

  for (const digest of BLOBS) a.send({ type: 'prefetched', job: id, digest, ok: true });
  a.send({ type: 'prefetched', job: id, digest: BLOBS[0] as string, ok: true }); // a repeat counts once
  b.send({ type: 'prefetched', job: id, digest: BLOBS[0] as string, ok: true });
  await new Promise((resolve) => setTimeout(resolve, 100));
  const midway = await job(id);
  t.is(midway.state, 'running', 'node-b has not answered every blob');
  t.deepEqual(midway.nodes?.map((n) => [n.name, n.state, n.blobsDone]), [['node-a', 'done', 2], ['node-b', 'running', 1]]);
  b.ws.close();

  const done = await finished(id);
  t.is(done.state, 'failed');
  t.deepEqual(withoutBytes(done.nodes), [
    { name: 'node-a', state: 'done', blobsDone: 2, blobsTotal: 2 },
    { name: 'node-b', state: 'failed', blobsDone: 1, blobsTotal: 2, error: 'the node disconnected before it had every blob' },
  ]);
  t.regex(done.message ?? '', /1 of 2 nodes failed: node-b/);
  t.true(done.blobs.every((x) => x.state === 'done'), "the supernode's cache holds every blob");
});

test('all: every live peer; a failed answer fails the node with its reason; a silent node fails at the timeout', async (t) => {
  const { supernode, post, finished } = await setUp(t, 300);
  const a = await connectPeer(t, supernode.url, 'peer-a', 'node-a');
  const b = await connectPeer(t, supernode.url, 'peer-b', 'node-b');
  await connectPeer(t, supernode.url, 'peer-old', undefined);
  const res = await post({ image: `${REGISTRY}/test/app:v1`, nodes: 'all' });
  t.is(res.status, 202, JSON.stringify(res.json));
  const id = res.json.id as string;
  await until(() => prefetches(a).length === 1 && prefetches(b).length === 1);
  for (const digest of BLOBS) a.send({ type: 'prefetched', job: id, digest, ok: true });
  b.send({ type: 'prefetched', job: id, digest: BLOBS[0] as string, ok: true });
  b.send({ type: 'prefetched', job: id, digest: BLOBS[1] as string, ok: false, error: 'no room: the cache quota is full' });
  const done = await finished(id);
  t.is(done.state, 'failed');
  t.deepEqual(
    withoutBytes([...(done.nodes ?? [])].sort((x, y) => x.name.localeCompare(y.name))),
    [
      { name: 'node-a', state: 'done', blobsDone: 2, blobsTotal: 2 },
      { name: 'node-b', state: 'failed', blobsDone: 1, blobsTotal: 2, error: `1 blob failed: ${BLOBS[1]}: no room: the cache quota is full` },
      { name: 'peer-old', state: 'failed', blobsDone: 0, blobsTotal: 2, error: 'the node sent no answer for 300 ms' },
    ],
  );
});

test('a job whose nodes all answer is done', async (t) => {
  const { supernode, post, finished } = await setUp(t);
  const a = await connectPeer(t, supernode.url, 'peer-a', 'node-a');
  a.ws.on('message', (data: Buffer) => {
    const m = JSON.parse(data.toString('utf8')) as SupernodeMessage;
    if (m.type === 'prefetch') for (const blob of m.blobs) a.send({ type: 'prefetched', job: m.job, digest: blob.digest, ok: true });
  });
  const res = await post({ image: `${REGISTRY}/test/app:v1`, nodes: ['node-a'] });
  t.is(res.status, 202);
  const done = await finished(res.json.id as string);
  t.is(done.state, 'done', JSON.stringify(done));
  t.deepEqual(withoutBytes(done.nodes), [{ name: 'node-a', state: 'done', blobsDone: 2, blobsTotal: 2 }]);
  t.is(done.message, "2 blobs in the supernode's cache; 1 node filled");
});
