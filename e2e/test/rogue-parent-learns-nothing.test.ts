/**
 * Regression: children sent the cluster token itself (`x-shoal-token`) to whatever parent
 * the scheduler named, so a listener registered as a parent collected the cluster secret
 * from real nodes and could then read anything from any peer or supernode.
 *
 * Now requests between Shoal processes are signed for their receiver. A ROGUE listener
 * registers as a parent (with the token, as a compromised registration would) and
 * announces every piece of a blob; a real node agent pulls the blob and asks the rogue
 * first. The rogue never sees the token, and none of the requests it received is accepted
 * when replayed, byte for byte, against the real node that now holds the blob or against
 * the supernode. Real docker-registry, supernode and node agents; the rogue is a plain
 * HTTP listener and a WebSocket.
 */
import test from 'ava';
import { join } from 'node:path';
import { request } from 'undici';
import { startNodeAgent, startSupernode } from '@shoal/cli';
import { requireTools } from '@shoal/testkit';
import { testLogger } from './helpers/cluster.js';
import { pushedImage } from './helpers/pushed-image.js';
import { openPeerSocket, pullBlob, replay, startRogueListener } from './helpers/security.js';

const TOKEN = 'rogue-parent-cluster-token-0123456789';
const MiB = 1024 * 1024;

test('a rogue parent receives no token and nothing it can replay against a real peer or the supernode', async (t) => {
  t.timeout(180_000);
  await requireTools(['docker-registry', 'skopeo']);
  const log = testLogger();
  const { dir, closers, registry, image } = await pushedImage(t, { dirPrefix: 'shoal-rogue', repository: 'sec/rogue', layers: [{ sizeBytes: 4 * MiB, seed: 'rogue' }] });
  const layer = image.layers[0];
  if (layer === undefined) throw new Error('one layer expected');

  const supernode = await startSupernode(log.child({ role: 'supernode' }), { listen: '127.0.0.1:0', dataDir: join(dir, 'supernode'), plainHttpHosts: [registry.host], token: TOKEN });
  closers.push(() => supernode.close());
  const supernodePort = Number(new URL(supernode.url).port);
  // The operator warms the supernode's cache (the token itself, as `shoal preheat` sends it).
  const task = await request(`${supernode.url}/api/v1/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-shoal-token': TOKEN },
    body: JSON.stringify({ digest: layer.digest, registry: registry.host, repository: 'sec/rogue' }),
  });
  const info = (await task.body.json()) as { pieceCount: number };
  t.is(task.statusCode, 200);
  for (let complete = false; !complete; await new Promise((r) => setTimeout(r, 100))) {
    const res = await request(`${supernode.url}/api/v1/blobs/${layer.digest}/info`, { headers: { 'x-shoal-token': TOKEN } });
    complete = ((await res.body.json()) as { complete: boolean }).complete;
  }

  // The rogue: a listener, registered as a parent holding every piece.
  const rogue = await startRogueListener();
  closers.push(() => rogue.close());
  const socket = await openPeerSocket(supernode.url, { 'x-shoal-token': TOKEN });
  closers.push(async () => socket.ws.terminate());
  socket.send({ type: 'register', peerId: 'rogue-parent', advertiseUrl: rogue.url });
  await socket.waitFor((m) => m.type === 'registered');
  socket.send({ type: 'have', digest: layer.digest, pieces: Array.from({ length: info.pieceCount }, (_, i) => i) });
  await new Promise((r) => setTimeout(r, 200));

  const agent = await startNodeAgent(log.child({ role: 'node' }), {
    supernodeUrls: [supernode.url],
    peerListen: '127.0.0.1:0',
    advertise: undefined,
    dataDir: join(dir, 'node'),
    token: TOKEN,
    proxyListen: '127.0.0.1:0',
    plainHttpHosts: [registry.host],
  });
  closers.push(() => agent.close());
  const pulled = await pullBlob(agent.proxyUrl, registry.host, 'sec/rogue', layer.digest);
  t.is(pulled.status, 200);
  t.is(pulled.digest, layer.digest);
  t.not(pulled.source, 'upstream', 'the swarm served it');

  const pieceRequests = rogue.requests.filter((r) => r.url.includes('/pieces/'));
  t.true(pieceRequests.length > 0, 'the node asked the rogue parent for pieces');
  for (const r of rogue.requests) {
    t.is(r.headers['x-shoal-token'], undefined, 'no token header');
    t.false(JSON.stringify([r.url, r.rawHeaders]).includes(TOKEN), 'the token appears nowhere in what the rogue received');
  }

  const peerPort = Number(new URL(agent.peerUrl).port);
  // The node now holds the blob: the paths the rogue saw are served there with the token.
  const control = await request(`${agent.peerUrl}${pieceRequests[0]?.url ?? ''}`, { headers: { 'x-shoal-token': TOKEN } });
  await control.body.dump();
  t.is(control.statusCode, 200, 'the path itself is served to a cluster member');
  for (const r of rogue.requests) {
    t.is(await replay(peerPort, r), 401, `replayed at the real peer: ${r.method} ${r.url}`);
    t.is(await replay(supernodePort, r), 401, `replayed at the supernode: ${r.method} ${r.url}`);
  }
});
