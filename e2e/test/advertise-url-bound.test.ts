/**
 * Regression: a peer's `advertiseUrl` was taken without any check, so a registration could
 * name any URL (user info, a path, another host) and every child was then sent there: a
 * blind GET to any host and path, carrying the cluster token.
 *
 * Now the supernode validates the URL (http(s)://host:port only) and names a peer as a parent
 * only once the URL is bound to it: its host is the address the registration came from, or
 * the peer answering there says it is this peer (a signed identity check with a nonce).
 * Real processes: a supernode and a node agent (`shoal supernode`, `shoal node`, with a
 * token file) and a real docker-registry. The registrations under test come from a raw
 * WebSocket holding the token (a compromised or misconfigured member).
 */
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { freePort, requireTools } from '@shoal/testkit';
import { spawnNode, spawnSupernode } from './helpers/processes.js';
import { pushedImage } from './helpers/pushed-image.js';
import { openPeerSocket, pullBlob } from './helpers/security.js';

const TOKEN = 'advertise-bound-cluster-token-0123456789';
const MiB = 1024 * 1024;

interface StatusPeer {
  peerId: string;
  advertiseUrl: string;
  advertiseCheck?: string;
}

test('advertised URLs are validated, and only URLs bound to their peer make it a parent', async (t) => {
  t.timeout(180_000);
  await requireTools(['docker-registry', 'skopeo']);
  const { dir, closers, registry, image } = await pushedImage(t, { dirPrefix: 'shoal-advertise', repository: 'sec/advertise', layers: [{ sizeBytes: 3 * MiB, seed: 'advertise' }] });
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, `${TOKEN}\n`);
  const layer = image.layers[0];
  if (layer === undefined) throw new Error('one layer expected');

  const supernode = await spawnSupernode(dir, registry.host, 'supernode', { SHOAL_TOKEN_FILE: tokenFile });
  closers.push(async () => void (await supernode.process.stop()));
  // An honest node whose advertised host is a name, not the address its connection comes
  // from (as behind NAT or with a DNS name): it is named as a parent once it proves it answers there.
  const peerPort = await freePort();
  const node = await spawnNode(dir, 'node', supernode.url, registry.host, { SHOAL_TOKEN_FILE: tokenFile, SHOAL_PEER_LISTEN: `127.0.0.1:${peerPort}`, SHOAL_ADVERTISE: `http://localhost:${peerPort}` });
  closers.push(async () => void (await node.process.stop()));
  const pulled = await pullBlob(node.url, registry.host, 'sec/advertise', layer.digest);
  t.is(pulled.digest, layer.digest);

  const rogue = await openPeerSocket(supernode.url, { 'x-shoal-token': TOKEN });
  closers.push(async () => rogue.ws.terminate());
  const invalid = ['http://user:pw@127.0.0.1:9', 'http://127.0.0.1:9/steal?x=1', 'http://127.0.0.1:9/', 'http://127.0.0.1:9#frag', 'http://127.0.0.1:9?q', 'ftp://127.0.0.1:9', 'file:///etc/passwd', 'not a url'];
  for (const [i, advertiseUrl] of invalid.entries()) {
    rogue.send({ type: 'register', peerId: `invalid-${i}`, advertiseUrl });
  }
  await rogue.waitFor(() => rogue.received.filter((m) => m.type === 'error').length >= invalid.length - 1);
  // `http://127.0.0.1:9/` is the bare origin with its slash: valid. Every other is refused.
  const registered = rogue.received.filter((m) => m.type === 'registered').map((m) => m.peerId);
  t.deepEqual(registered, ['invalid-2']);
  t.true(rogue.received.filter((m) => m.type === 'error').every((m) => /advertised URL/.test(m.message ?? '')));

  // rogue-a points at the honest node under a host that is not its own connection's; the
  // node answers the identity check with its own id, so rogue-a is not bound. rogue-b names
  // a host where nobody answers.
  for (const [peerId, advertiseUrl] of [
    ['rogue-a', `http://localhost:${peerPort}`],
    ['rogue-b', 'http://127.0.0.3:9'],
  ] as const) {
    const s = await openPeerSocket(supernode.url, { 'x-shoal-token': TOKEN });
    closers.push(async () => s.ws.terminate());
    s.send({ type: 'register', peerId, advertiseUrl });
    await s.waitFor((m) => m.type === 'registered');
    s.send({ type: 'have', digest: layer.digest, pieces: [0, 1, 2] });
  }

  const status = async (): Promise<StatusPeer[]> => {
    const res = await request(`${supernode.url}/api/v1/status`, { headers: { 'x-shoal-token': TOKEN } });
    return ((await res.body.json()) as { peers: StatusPeer[] }).peers;
  };
  const deadline = Date.now() + 15_000;
  let peers = await status();
  while (peers.some((p) => p.advertiseCheck === 'checking') || peers.length < 3) {
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
    peers = await status();
  }
  const check = Object.fromEntries(peers.map((p) => [p.peerId, p.advertiseCheck]));
  t.is(check['rogue-a'], 'failed');
  t.is(check['rogue-b'], 'failed');
  t.is(check['invalid-2'], 'bound', 'a URL whose host is the connection address is bound at once');
  const honest = peers.find((p) => p.advertiseUrl === `http://localhost:${peerPort}` && !p.peerId.startsWith('rogue'));
  t.is(honest?.advertiseCheck, 'verified', 'the honest node proved it answers at its advertised name');

  // What a child is told: the honest node is a parent, the rogues never are.
  const schedule = await request(`${supernode.url}/api/v1/blobs/${layer.digest}/schedule`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-shoal-token': TOKEN },
    body: JSON.stringify({ peerId: 'observer', advertiseUrl: 'http://127.0.0.1:7', limit: 16 }),
  });
  t.is(schedule.statusCode, 200);
  const answer = (await schedule.body.json()) as { assignments: Array<{ candidates: Array<{ kind: string; peerId?: string; url?: string }> }> };
  const parents = new Set(answer.assignments.flatMap((a) => a.candidates.flatMap((c) => (c.kind === 'peer' ? [c.peerId] : []))));
  t.true(parents.has(honest?.peerId), `the honest node is a parent: ${JSON.stringify([...parents])}`);
  t.false(parents.has('rogue-a'));
  t.false(parents.has('rogue-b'));
});
