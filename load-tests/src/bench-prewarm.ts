/**
 * `npm run bench:prewarm` — time from "image needed" to "image ready in containerd" for a
 * ~512 MiB image, on one machine, real processes on loopback (docker-registry, a supernode
 * and node agents in this process, one containerd 1.6 with CRI per node):
 *   cold        nothing cached anywhere: containerd's CRI PullImage through the node's proxy
 *               (the swarm fetches from the registry once, containerd unpacks);
 *   store-only  the node's Shoal store was filled beforehand (preheat --nodes without the
 *               runtime step): CRI PullImage reads every blob from local disk, then unpacks;
 *   prewarmed   preheat --nodes with the runtime step ran beforehand: kubelet's
 *               IfNotPresent check (CRI ImageStatus) finds the image, nothing is pulled.
 * Also the prewarm itself (store fill + containerd pull) and the CPU busy share of the machine.
 * Writes load-tests/results/bench-prewarm.json.
 */
import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { API_PREFIX, createLogger, type PreheatJob } from '@shoal/core';
import { CriImageService } from '@shoal/peer';
import { startNodeAgent, startSupernode, writeContainerdConfig, type RunningNodeAgent } from '@shoal/cli';
import { buildImage, makeTempDir, pushImage, removeTempDir, requireTools, startContainerd, startRegistry, waitFor, type RunningContainerd } from '@shoal/testkit';

const MiB = 1024 * 1024;
const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));

async function cpuTicks(): Promise<{ busy: number; total: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; cpuBusyPct: number; value: T }> {
  const c0 = await cpuTicks();
  const t0 = performance.now();
  const value = await fn();
  const ms = performance.now() - t0;
  const c1 = await cpuTicks();
  return { ms, cpuBusyPct: Math.round((100 * (c1.busy - c0.busy)) / Math.max(1, c1.total - c0.total)), value };
}

async function main(): Promise<void> {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const dir = await makeTempDir('shoal-bench-prewarm');
  const log = createLogger({ name: 'bench-prewarm', level: 'warn' });
  const closers: Array<() => Promise<void>> = [];
  try {
    const registry = await startRegistry({});
    closers.push(() => registry.stop());
    const image = await buildImage({ dir: join(dir, 'layout'), tag: 'v1', layers: [0, 1, 2, 3].map((i) => ({ sizeBytes: 128 * MiB, seed: `bench-prewarm-${i}` })) });
    await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: 'bench/prewarm' });
    const ref = `${registry.host}/bench/prewarm:v1`;
    const supernode = await startSupernode(log, { listen: '127.0.0.1:0', dataDir: join(dir, 'supernode'), plainHttpHosts: [registry.host], token: undefined });
    closers.push(() => supernode.close());
    const startNode = async (name: string): Promise<{ agent: RunningNodeAgent; containerd: RunningContainerd; cri: CriImageService }> => {
      const certsDir = join(dir, `${name}-certs.d`);
      await mkdir(certsDir, { recursive: true });
      const containerd = await startContainerd({ name: `${name}-containerd`, cri: { configPath: certsDir } });
      closers.push(() => containerd.stop());
      const agent = await startNodeAgent(log, {
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
      await writeContainerdConfig({ certsDir, proxyUrl: agent.proxyUrl, registries: [registry.host], plainHttpHosts: [registry.host] });
      const cri = new CriImageService(containerd.socket);
      closers.push(async () => cri.close());
      return { agent, containerd, cri };
    };
    const pull = (cri: CriImageService): Promise<string> => cri.pullImage({ image: ref, sandboxLabels: { bench: 'prewarm' }, sandboxName: 'bench', sandboxUid: 'bench', sandboxNamespace: 'bench' });
    const preheat = async (nodeName: string, runtimePull: 'Always' | undefined): Promise<PreheatJob> => {
      const res = await request(`${supernode.url}${API_PREFIX}/preheat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: ref, nodes: [nodeName], ...(runtimePull === undefined ? {} : { runtimePull }) }) });
      let job = (await res.body.json()) as PreheatJob;
      if (res.statusCode !== 202) throw new Error(`preheat refused: ${JSON.stringify(job)}`);
      while (job.state === 'running') {
        await new Promise((r) => setTimeout(r, 100));
        job = (await (await request(`${supernode.url}${API_PREFIX}/preheat/${job.id}`)).body.json()) as PreheatJob;
      }
      if (job.state !== 'done') throw new Error(`preheat failed: ${JSON.stringify(job.nodes)}`);
      return job;
    };

    const cold = await startNode('node-cold');
    const prewarmed = await startNode('node-prewarmed');
    const storeOnly = await startNode('node-store-only');
    await waitFor(async () => ((await (await request(`${supernode.url}${API_PREFIX}/status`)).body.json()) as { peers: unknown[] }).peers.length === 3, { timeoutMs: 10_000, description: 'peers registered' });

    const coldPull = await timed(() => pull(cold.cri));
    // The supernode now holds the image (as after any first pull in the cluster): the prewarm fills the node from it.
    const prewarm = await timed(() => preheat('node-prewarmed', 'Always'));
    const needed = await timed(async () => prewarmed.cri.imageStatus(ref));
    if (needed.value === undefined) throw new Error('prewarmed image not in containerd');
    const fill = await timed(() => preheat('node-store-only', undefined));
    const storeOnlyPull = await timed(() => pull(storeOnly.cri));

    const result = {
      date: new Date().toISOString(),
      imageBytes: image.layers.reduce((s, l) => s + l.sizeBytes, 0),
      coldMs: Math.round(coldPull.ms),
      coldCpuBusyPct: coldPull.cpuBusyPct,
      storeOnlyMs: Math.round(storeOnlyPull.ms),
      storeOnlyCpuBusyPct: storeOnlyPull.cpuBusyPct,
      prewarmedMs: Math.round(needed.ms * 10) / 10,
      prewarmJobMs: Math.round(prewarm.ms),
      prewarmJobCpuBusyPct: prewarm.cpuBusyPct,
      storeFillMs: Math.round(fill.ms),
      machineCores: (await readFile('/proc/cpuinfo', 'utf8')).split('\n').filter((l) => l.startsWith('processor')).length,
    };
    await mkdir(RESULTS_DIR, { recursive: true });
    await writeFile(join(RESULTS_DIR, 'bench-prewarm.json'), `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    await removeTempDir(dir);
  }
}

await main();
