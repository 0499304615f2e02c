import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { request } from 'undici';
import { API_PREFIX, HEADER } from '@shoal/core';
import { startNodeAgent, startSupernode, type Running, type RunningNodeAgent } from '@shoal/cli';
import { buildImage, makeTempDir, pushImage, removeTempDir, startRegistry, waitFor, type BuiltImage, type RunningRegistry } from '@shoal/testkit';
import { testLogger } from './cluster.js';

/**
 * A live swarm for the operations tests (metrics reference, dashboard, status
 * page, k6 scripts): a real docker-registry, a supernode and node agents with
 * the cluster token, zones and node names, an image pulled through every
 * node's proxy (so blobs have copies on nodes) and a preheat job. No
 * containerd: the pulls are plain HTTP through the proxies, as containerd's are.
 */
export interface OpsSwarm {
  registry: RunningRegistry;
  supernode: Running;
  nodes: Array<RunningNodeAgent & { name: string; zone: string }>;
  token: string;
  image: BuiltImage;
  /** `registry-host/repository` and tag of the pulled image. */
  repository: string;
  tag: string;
  /** A second image, warmed by a preheat job with nodes: all. */
  preheatImage: string;
  dir: string;
  close(): Promise<void>;
}

export const OPS_MANIFEST_ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json';

/** GETs a blob through a node's proxy and checks its digest; returns X-Shoal-Source. */
export async function pullBlob(proxyUrl: string, registryHost: string, repository: string, digest: string): Promise<string> {
  const res = await request(`${proxyUrl}/v2/${repository}/blobs/${digest}?ns=${encodeURIComponent(registryHost)}`);
  const hash = createHash('sha256');
  for await (const chunk of res.body) hash.update(chunk as Buffer);
  if (res.statusCode !== 200) throw new Error(`proxy answered ${res.statusCode} for ${digest}`);
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== digest) throw new Error(`${digest} came back as ${actual}`);
  return String(res.headers[HEADER.source] ?? '');
}

export async function startOpsSwarm(options: { nodes?: number; quotaBytes?: number } = {}): Promise<OpsSwarm> {
  const dir = await makeTempDir('shoal-ops');
  const log = testLogger();
  const token = randomBytes(24).toString('hex');
  const closers: Array<() => Promise<void>> = [];
  const close = async (): Promise<void> => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    await removeTempDir(dir);
  };
  try {
    const registry = await startRegistry({});
    closers.push(() => registry.stop());
    const quotaBytes = options.quotaBytes ?? 256 * 1024 * 1024;
    const supernode = await startSupernode(log.child({ role: 'supernode' }), { listen: '127.0.0.1:0', dataDir: join(dir, 'supernode'), plainHttpHosts: [registry.host], token, quotaBytes });
    closers.push(() => supernode.close());
    const zones = ['zone-a', 'zone-a', 'zone-b', 'zone-b'];
    const nodes: OpsSwarm['nodes'] = [];
    for (let i = 0; i < (options.nodes ?? 3); i++) {
      const name = `node-${i + 1}`;
      const zone = zones[i % zones.length] as string;
      const agent = await startNodeAgent(log.child({ role: name }), {
        supernodeUrls: [supernode.url],
        peerListen: '127.0.0.1:0',
        advertise: undefined,
        dataDir: join(dir, name),
        token,
        proxyListen: '127.0.0.1:0',
        plainHttpHosts: [registry.host],
        zone,
        nodeName: name,
        quotaBytes,
      });
      closers.push(() => agent.close());
      nodes.push({ ...agent, name, zone });
    }
    const repository = 'ops/app';
    const tag = 'v1';
    const image = await buildImage({
      dir: join(dir, 'layout'),
      tag,
      layers: [
        { sizeBytes: 3 * 1024 * 1024 + 311, seed: 'ops-a' },
        { sizeBytes: 1024 * 1024 + 17, seed: 'ops-b' },
      ],
    });
    await pushImage({ layoutDir: image.layoutDir, tag, registry: registry.host, repository });
    const preheatLayout = await buildImage({ dir: join(dir, 'layout2'), tag: 'v2', layers: [{ sizeBytes: 2 * 1024 * 1024, seed: 'ops-c' }] });
    await pushImage({ layoutDir: preheatLayout.layoutDir, tag: 'v2', registry: registry.host, repository: 'ops/warm' });
    await waitFor(async () => {
      const res = await request(`${supernode.url}${API_PREFIX}/status`, { headers: { [HEADER.token]: token } });
      const body = (await res.body.json()) as { peers: Array<{ connected: boolean }> };
      return body.peers.filter((p) => p.connected).length === nodes.length;
    }, { timeoutMs: 15_000, description: 'every node registered over its WebSocket' });

    // Pull the image through each node's proxy in turn: the first from the registry via the
    // supernode, the next ones from the swarm.
    const blobs = [image.configDigest, ...image.layers.map((l) => l.digest)];
    for (const node of nodes) {
      const manifest = await request(`${node.proxyUrl}/v2/${repository}/manifests/${tag}?ns=${encodeURIComponent(registry.host)}`, { headers: { accept: OPS_MANIFEST_ACCEPT } });
      await manifest.body.text();
      if (manifest.statusCode !== 200) throw new Error(`manifest through ${node.name}: ${manifest.statusCode}`);
      for (const digest of blobs) await pullBlob(node.proxyUrl, registry.host, repository, digest);
    }

    const preheatImage = `${registry.host}/ops/warm:v2`;
    const started = await request(`${supernode.url}${API_PREFIX}/preheat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [HEADER.token]: token },
      body: JSON.stringify({ image: preheatImage, nodes: 'all' }),
    });
    const job = (await started.body.json()) as { id: string };
    if (started.statusCode !== 202) throw new Error(`preheat answered ${started.statusCode}: ${JSON.stringify(job)}`);
    await waitFor(async () => {
      const res = await request(`${supernode.url}${API_PREFIX}/preheat/${job.id}`, { headers: { [HEADER.token]: token } });
      const body = (await res.body.json()) as { state: string };
      if (body.state === 'failed') throw new Error(`preheat failed: ${JSON.stringify(body)}`);
      return body.state === 'done';
    }, { timeoutMs: 30_000, description: 'the preheat job done' });
    return { registry, supernode, nodes, token, image, repository, tag, preheatImage, dir, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** One metric family as /metrics describes it. */
export interface MetricFamily {
  name: string;
  type: string;
  help: string;
  /** Which service exported it. */
  service: 'supernode' | 'peer' | 'proxy';
}

/** Every family (`# TYPE` line) the supernode, a node's peer and its proxy export. */
export async function scrapeFamilies(swarm: OpsSwarm): Promise<MetricFamily[]> {
  const node = swarm.nodes[0];
  if (node === undefined) throw new Error('no node');
  const out: MetricFamily[] = [];
  const targets: Array<[MetricFamily['service'], string]> = [['supernode', swarm.supernode.url], ['peer', node.peerUrl], ['proxy', node.proxyUrl]];
  for (const [service, url] of targets) {
    const res = await request(`${url}/metrics`);
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`${service} /metrics answered ${res.statusCode}`);
    const help = new Map<string, string>();
    for (const m of text.matchAll(/^# HELP (\S+) (.*)$/gm)) help.set(m[1] as string, m[2] as string);
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.push({ name: m[1] as string, type: m[2] as string, help: help.get(m[1] as string) ?? '', service });
  }
  return out;
}

/** Sample names a family produces: a histogram's _bucket, _sum and _count, a summary's _sum and _count. */
export function sampleNames(family: MetricFamily): string[] {
  if (family.type === 'histogram') return [`${family.name}_bucket`, `${family.name}_sum`, `${family.name}_count`];
  if (family.type === 'summary') return [family.name, `${family.name}_sum`, `${family.name}_count`];
  return [family.name];
}
