/**
 * Regression: the token file was read once at start, so rotating the cluster's Secret
 * split the cluster: processes started after the rotation (new token) and those started
 * before (old token) refused each other until every one was restarted.
 *
 * Now every process re-reads its token file (Kubernetes swaps a `..data` symlink in the
 * Secret's volume; this test does the same), accepts the old and the new token at once,
 * keeps signing with the old one for the grace period, then signs with the new one, and
 * refuses the old one after a second grace. Real processes: a supernode and three node
 * agents (`shoal supernode`, `shoal node`), each with its own token file, and a real
 * docker-registry. Pulls keep coming from the swarm throughout.
 */
import test from 'ava';
import { join } from 'node:path';
import { request } from 'undici';
import { requireTools, waitFor } from '@shoal/testkit';
import { spawnNode, spawnSupernode } from './helpers/processes.js';
import { metricValue } from './helpers/metrics.js';
import { pullBlobChecked } from './helpers/security.js';
import { pushedImage } from './helpers/pushed-image.js';
import { secretVolume } from './helpers/secret-volume.js';

const OLD = 'rotation-old-token-0123456789abcdef';
const NEW = 'rotation-new-token-fedcba9876543210';
const GRACE_SEC = 10;
const MiB = 1024 * 1024;

test('rotating the token file mid-run: pulls keep coming from the swarm, old and new processes talk, the old token ends', async (t) => {
  t.timeout(240_000);
  await requireTools(['docker-registry', 'skopeo']);
  const { dir, closers, registry, image } = await pushedImage(t, {
    dirPrefix: 'shoal-rotation',
    repository: 'sec/rotation',
    layers: [{ sizeBytes: 4 * MiB, seed: 'rotation-x' }, { sizeBytes: 4 * MiB, seed: 'rotation-y' }],
  });
  const [x, y] = image.layers;
  if (x === undefined || y === undefined) throw new Error('two layers expected');
  const pull = (node: { url: string }, digest: string): Promise<string | undefined> => pullBlobChecked(t, node.url, registry.host, 'sec/rotation', digest);
  /** How a service answers a GET carrying `token` in x-shoal-token: 401 while it does not know that token. */
  const statusWith = async (url: string, token: string): Promise<number> => {
    const res = await request(url, { headers: { 'x-shoal-token': token } });
    await res.body.dump();
    return res.statusCode;
  };
  const grace = { SHOAL_TOKEN_GRACE_SEC: String(GRACE_SEC) };

  const snSecret = await secretVolume(join(dir, 'secret-supernode'), OLD);
  const supernode = await spawnSupernode(dir, registry.host, 'supernode', { SHOAL_TOKEN_FILE: snSecret.file, ...grace });
  closers.push(async () => void (await supernode.process.stop()));
  const secrets = [await secretVolume(join(dir, 'secret-node0'), OLD), await secretVolume(join(dir, 'secret-node1'), OLD)];
  const node0 = await spawnNode(dir, 'node0', supernode.url, registry.host, { SHOAL_TOKEN_FILE: secrets[0]?.file ?? '', ...grace });
  closers.push(async () => void (await node0.process.stop()));
  const node1 = await spawnNode(dir, 'node1', supernode.url, registry.host, { SHOAL_TOKEN_FILE: secrets[1]?.file ?? '', ...grace });
  closers.push(async () => void (await node1.process.stop()));
  t.is(await pull(node0, x.digest), 'supernode');

  // The Secret changes: the supernode and node0 see it first; node1 a little later.
  await snSecret.write(NEW);
  await secrets[0]?.write(NEW);
  const rotatedAt = Date.now();
  const supernodeStatus = `${supernode.url}/api/v1/status`;
  // Each process reads its file on its own poll, up to TOKEN_FILE_POLL_MS (2 s) later. node2
  // below needs node0 to have read it: asked before that, node0 and node1 (rotated later still)
  // both refuse node2's signature (unknown key) and every piece comes from the seed.
  const reading = { timeoutMs: 15_000, intervalMs: 200 };
  await waitFor(async () => (await statusWith(supernodeStatus, NEW)) === 200, { ...reading, description: 'the supernode to accept the new token' });
  t.is(await statusWith(supernodeStatus, OLD), 200, 'the supernode still accepts the old token');
  const node0Blob = `${node0.peerUrl}/api/v1/blobs/${x.digest}/info`;
  await waitFor(async () => (await statusWith(node0Blob, NEW)) === 200, { ...reading, description: 'node0 to accept the new token' });
  t.is(await statusWith(node0Blob, OLD), 200, 'node0 still accepts the old token');

  // node1 has not read the new file yet: it still talks to everyone with the old token.
  t.not(await pull(node1, x.digest), 'upstream');
  await secrets[1]?.write(NEW);
  t.log(`node1's file rotated ${Date.now() - rotatedAt} ms after the supernode's (must be well within the ${GRACE_SEC} s grace)`);

  // A node started after the rotation knows only the new token, and fetches from node0 (node1
  // too once it has read its file; a refusal before that sends node2 on to the next candidate).
  const node2Secret = await secretVolume(join(dir, 'secret-node2'), NEW);
  const node2 = await spawnNode(dir, 'node2', supernode.url, registry.host, { SHOAL_TOKEN_FILE: node2Secret.file, ...grace });
  closers.push(async () => void (await node2.process.stop()));
  t.not(await pull(node2, x.digest), 'upstream');
  t.true((await metricValue(node2.peerUrl, 'shoal_peer_piece_bytes_total', { from: 'peer' })) > 0, 'node2 (new token) got pieces from its peers (old token, rotating)');

  // Two graces (and a poll) after the rotation the old token is refused; pulls go on.
  const settle = rotatedAt + 2 * GRACE_SEC * 1000 + 3_000 - Date.now();
  if (settle > 0) await new Promise((r) => setTimeout(r, settle));
  t.is(await statusWith(supernodeStatus, OLD), 401, 'the old token is refused after two graces');
  t.is(await statusWith(supernodeStatus, NEW), 200);
  for (const node of [node1, node2, node0]) t.not(await pull(node, y.digest), 'upstream');
  t.true((await metricValue(node1.peerUrl, 'shoal_peer_piece_bytes_total', { from: 'peer' })) > 0, 'node1 got pieces from its peers');
});
