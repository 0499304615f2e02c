/**
 * A process started after a one-step token replace knows only the new token: until its
 * peers have read the new file, they refuse its signatures and it refuses theirs (counted
 * in shoal_*_token_rejections_total). A token file may list several tokens (the first
 * signs, every one is accepted), and the rotation in three steps (`OLD\nNEW`, `NEW\nOLD`,
 * `NEW`) leaves no such moment: a process started at any point signs with a token every
 * other accepts, and accepts every token the others sign with.
 *
 * Real processes (`shoal supernode`, `shoal node`), each with its own Secret-like volume,
 * and a real docker-registry. Each step reaches node1 last, after a new node has started and
 * pulled; every wait for a process to read its file watches that process's log line, so no
 * step depends on when a poll happens to come.
 */
import test from 'ava';
import { join } from 'node:path';
import { request } from 'undici';
import { requireTools, waitFor } from '@shoal/testkit';
import { spawnNode, spawnSupernode, type ShoalProcess } from './helpers/processes.js';
import { metricValue } from './helpers/metrics.js';
import { pullBlobChecked } from './helpers/security.js';
import { pushedImage } from './helpers/pushed-image.js';
import { secretVolume } from './helpers/secret-volume.js';

const OLD = 'three-step-old-token-0123456789abcdef';
const NEW = 'three-step-new-token-fedcba9876543210';
const GRACE_SEC = 4;
const MiB = 1024 * 1024;

/** What each step's read logs (services/service-kit's token-file watch). */
const READ_LOG = {
  step1: 'cluster token file: token added; accepted, not signing',
  step2: 'cluster token file: the first token changed; it signs after the grace period, the previous one until then',
  step3: 'cluster token file: token removed; accepted for two grace periods, then refused',
} as const;

/** Requests a service refused for the token; fails when the counter is not exported under that name. */
async function rejections(url: string, name: string): Promise<number> {
  const res = await request(`${url}/metrics`);
  const text = await res.body.text();
  if (!text.includes(`# TYPE ${name} counter`)) throw new Error(`${url}/metrics has no ${name}`);
  return metricValue(url, name);
}

test('three-step token rotation on running processes, with nodes started between the steps: pieces from peers, no token rejection anywhere', async (t) => {
  t.timeout(180_000);
  await requireTools(['docker-registry', 'skopeo']);
  const layers = [{ sizeBytes: 4 * MiB, seed: 'three-step-x' }, { sizeBytes: 4 * MiB, seed: 'three-step-y' }];
  const { dir, closers, registry, image } = await pushedImage(t, { dirPrefix: 'shoal-three-step', repository: 'sec/three-step', layers });
  const [x, y] = image.layers;
  if (x === undefined || y === undefined) throw new Error('two layers expected');
  const pull = (node: { url: string }, digest: string): Promise<string | undefined> => pullBlobChecked(t, node.url, registry.host, 'sec/three-step', digest);
  const fromPeers = (node: { peerUrl: string }): Promise<number> => metricValue(node.peerUrl, 'shoal_peer_piece_bytes_total', { from: 'peer' });
  const grace = { SHOAL_TOKEN_GRACE_SEC: String(GRACE_SEC) };

  const volumes = new Map<ShoalProcess, Awaited<ReturnType<typeof secretVolume>>>();
  const spawnNodeWith = async (name: string, text: string): Promise<ShoalProcess & { peerUrl: string }> => {
    const volume = await secretVolume(join(dir, `secret-${name}`), text);
    const node = await spawnNode(dir, name, supernode.url, registry.host, { SHOAL_TOKEN_FILE: volume.file, ...grace });
    closers.push(async () => void (await node.process.stop()));
    volumes.set(node, volume);
    return node;
  };
  /** Writes `text` to each one's file, then waits until each has logged reading it. */
  const step = async (processes: ShoalProcess[], text: string, line: string): Promise<void> => {
    for (const p of processes) await volumes.get(p)?.write(text);
    for (const p of processes) {
      await waitFor(async () => (await p.process.stdout()).includes(line), { timeoutMs: 15_000, intervalMs: 100, process: p.process, description: `${p.process.name} to log "${line}"` });
    }
  };

  const snVolume = await secretVolume(join(dir, 'secret-supernode'), OLD);
  const supernode = await spawnSupernode(dir, registry.host, 'supernode', { SHOAL_TOKEN_FILE: snVolume.file, ...grace });
  closers.push(async () => void (await supernode.process.stop()));
  volumes.set(supernode, snVolume);
  const node0 = await spawnNodeWith('node0', OLD);
  const node1 = await spawnNodeWith('node1', OLD);
  t.not(await pull(node0, x.digest), 'upstream');
  t.not(await pull(node1, x.digest), 'upstream');

  // Step 1: OLD signs, NEW is accepted. node1 reads it last; node2 starts before that.
  await step([supernode, node0], `${OLD}\n${NEW}`, READ_LOG.step1);
  const node2 = await spawnNodeWith('node2', `${OLD}\n${NEW}`);
  t.not(await pull(node2, x.digest), 'upstream');
  t.true((await fromPeers(node2)) > 0, 'node2 (OLD+NEW, started between the steps) got pieces from its peers');
  await step([node1], `${OLD}\n${NEW}`, READ_LOG.step1);

  // Step 2: NEW signs after the grace, OLD is still accepted. node3 starts before node1 reads
  // it, and signs with NEW at once: node1 (still OLD+NEW, signing OLD) accepts it, and
  // node3 accepts OLD from node1 and from the processes within their grace.
  await step([supernode, node0, node2], `${NEW}\n${OLD}`, READ_LOG.step2);
  const node3 = await spawnNodeWith('node3', `${NEW}\n${OLD}`);
  t.not(await pull(node3, x.digest), 'upstream');
  t.true((await fromPeers(node3)) > 0, 'node3 (NEW+OLD, started between the steps) got pieces from its peers');
  t.not(await pull(node3, y.digest), 'upstream');
  t.not(await pull(node1, y.digest), 'upstream');
  await step([node1], `${NEW}\n${OLD}`, READ_LOG.step2);
  const step2ReadAt = Date.now();

  // Step 3, once every process signs with NEW (a grace after the last one read step 2):
  // OLD leaves the file. node4 starts before node1 reads it and knows only NEW.
  await new Promise((resolve) => setTimeout(resolve, step2ReadAt + GRACE_SEC * 1000 + 500 - Date.now()));
  await step([supernode, node0, node2, node3], NEW, READ_LOG.step3);
  const node4 = await spawnNodeWith('node4', NEW);
  t.not(await pull(node4, x.digest), 'upstream');
  t.not(await pull(node4, y.digest), 'upstream');
  t.true((await fromPeers(node4)) > 0, 'node4 (NEW only, started after the last step) got pieces from its peers');
  await step([node1], NEW, READ_LOG.step3);
  t.not(await pull(node0, y.digest), 'upstream');

  t.is(await rejections(supernode.url, 'shoal_supernode_token_rejections_total'), 0, 'the supernode refused nothing');
  for (const [name, node] of Object.entries({ node0, node1, node2, node3, node4 })) {
    t.is(await rejections(node.peerUrl, 'shoal_peer_token_rejections_total'), 0, `${name} refused nothing`);
  }
});
