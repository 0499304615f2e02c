/**
 * `npm run bench:pull` — one node's pull, measured in one run against its baselines:
 *   (a) containerd pulling a ~512 MiB image directly from docker-registry,
 *   (b) the same through Shoal, cold (supernode and node empty),
 *   (c) through Shoal on a second node, warm swarm (supernode has the blobs),
 * plus curl throughput of a cached blob from the proxy vs from docker-registry, and the
 * node agent's peak RSS while 4 clients fetch a 1 GiB blob at once (cold, then cached).
 * Everything runs on loopback as real processes: docker-registry, `shoal supernode`,
 * `shoal node`, containerd + ctr. Every pull also reports the CPU-seconds (user + sys from
 * /proc/<pid>/stat) of each Shoal process and of docker-registry per GiB of image, and
 * the machine's CPU busy fraction over the pull. Run with --help for the flags.
 */
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import {
  buildImage,
  freePort,
  httpOk,
  makeTempDir,
  minimalEnv,
  pushImage,
  removeTempDir,
  requireTools,
  runChecked,
  spawnProcess,
  startContainerd,
  startRegistry,
  waitFor,
  type ManagedProcess,
  type RunningRegistry,
} from '@shoal/testkit';
import { NODE_FLAGS } from '@shoal/cli';
import { machineCpuSeconds, processCpuSeconds } from './netns/cpu.js';
import { rssMiB } from './lib/shoal-processes.js';

const MiB = 1024 * 1024;
const SHOAL = fileURLToPath(new URL('../../services/shoal/bin/shoal.js', import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));

const USAGE = `usage: npm run bench:pull -- [options]
  --runs N     pulls of each kind, each with fresh state; medians reported (3)
  --keep       keep the work dir
  -h, --help   this text
`;
const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '3' }, keep: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } } });
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const RUNS = Number(args.runs);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs must be a positive integer, got ${String(args.runs)}`);
const GiB = 1024 * MiB;
/** The node agent's peak RSS should stay under three quarters of the chart's memory limit for it (512Mi, charts/shoal/values.yaml). */
const NODE_RSS_TARGET_MIB = 384;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};


interface Shoal {
  supernode: ManagedProcess;
  nodes: Array<{ process: ManagedProcess; proxyUrl: string }>;
  stop(): Promise<void>;
}

async function startShoal(dir: string, registry: RunningRegistry, nodeCount: number): Promise<Shoal> {
  const env = minimalEnv({ SHOAL_PLAIN_HTTP: registry.host, SHOAL_LOG_LEVEL: 'warn' });
  const snPort = await freePort();
  const supernode = await spawnProcess({
    name: 'supernode',
    command: process.execPath,
    args: [...NODE_FLAGS, SHOAL, 'supernode'],
    env: { ...env, SHOAL_LISTEN: `127.0.0.1:${snPort}`, SHOAL_DATA: join(dir, 'supernode') },
    logDir: dir,
  });
  await waitFor(() => httpOk(`http://127.0.0.1:${snPort}/readyz`), { process: supernode, description: 'supernode ready' });
  const nodes: Shoal['nodes'] = [];
  for (let i = 0; i < nodeCount; i++) {
    const [proxyPort, peerPort] = [await freePort(), await freePort()];
    const p = await spawnProcess({
      name: `node${i}`,
      command: process.execPath,
      args: [...NODE_FLAGS, SHOAL, 'node'],
      env: {
        ...env,
        SHOAL_SUPERNODE: `http://127.0.0.1:${snPort}`,
        SHOAL_PROXY_LISTEN: `127.0.0.1:${proxyPort}`,
        SHOAL_PEER_LISTEN: `127.0.0.1:${peerPort}`,
        SHOAL_DATA: join(dir, `node${i}`),
      },
      logDir: dir,
    });
    const proxyUrl = `http://127.0.0.1:${proxyPort}`;
    await waitFor(() => httpOk(`${proxyUrl}/readyz`), { process: p, description: `node${i} ready` });
    nodes.push({ process: p, proxyUrl });
  }
  return {
    supernode,
    nodes,
    async stop() {
      for (const n of nodes) await n.process.stop();
      await supernode.stop();
    },
  };
}

/** hosts.toml written by the product itself, as an SRE would. */
async function containerdConfig(certsDir: string, proxyUrl: string, registryHost: string): Promise<void> {
  await runChecked(process.execPath, [SHOAL, 'containerd-config', '--certs-dir', certsDir, '--proxy', proxyUrl, '--plain-http', registryHost], { env: minimalEnv() });
}

/** CPU-seconds a phase cost: the whole machine's (containerd, registry, Shoal, kernel), Shoal's own processes' together and each one's. */
interface CpuCost {
  machineCpuS: number;
  /** The machine's busy share over the phase (all cores). */
  machineBusy: number;
  shoalCpuS: number;
  /** Each named process's CPU-seconds over the phase. */
  byProcess: Record<string, number>;
}

/** Runs `phase` and reports the CPU it cost; `shoal` names Shoal's processes, `others` the rest to account for (the registry). */
async function withCpu<T>(shoal: Record<string, number>, others: Record<string, number>, phase: () => Promise<T>): Promise<{ result: T; cost: CpuCost }> {
  const all = { ...shoal, ...others };
  const each = async (): Promise<Record<string, number>> => Object.fromEntries(await Promise.all(Object.entries(all).map(async ([name, pid]) => [name, await processCpuSeconds(pid)] as const)));
  const [m0, e0] = [await machineCpuSeconds(), await each()];
  const result = await phase();
  const [m1, e1] = [await machineCpuSeconds(), await each()];
  const byProcess = Object.fromEntries(Object.keys(all).map((name) => [name, (e1[name] ?? 0) - (e0[name] ?? 0)]));
  const shoalCpuS = Object.keys(shoal).reduce((a, name) => a + (byProcess[name] ?? 0), 0);
  return { result, cost: { machineCpuS: m1.busy - m0.busy, machineBusy: (m1.busy - m0.busy) / Math.max(0.01, m1.total - m0.total), shoalCpuS, byProcess } };
}

async function curlSpeed(url: string): Promise<number> {
  const r = await runChecked('curl', ['-sS', '-o', '/dev/null', '-w', '%{speed_download}', url]);
  return Number(r.stdout.trim()) / MiB;
}

async function sourcesOf(proxyUrl: string): Promise<Record<string, number>> {
  const res = await request(`${proxyUrl}/metrics`);
  const text = await res.body.text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^shoal_proxy_blob_bytes_total\{[^}]*source="([a-z]+)"[^}]*\} ([0-9.e+]+)$/gm)) {
    out[m[1] as string] = (out[m[1] as string] ?? 0) + Number(m[2]) / MiB;
  }
  return out;
}

async function main(): Promise<void> {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const dir = await makeTempDir('shoal-bench');
  const log = (msg: string): void => void process.stderr.write(`[bench] ${msg}\n`);
  try {
    log(`building images in ${dir}`);
    const image = await buildImage({
      dir: join(dir, 'layout'),
      tag: 'big',
      layers: [192, 160, 96, 48, 16].map((mib, i) => ({ sizeBytes: mib * MiB, seed: `bench-${i}` })),
    });
    const huge = await buildImage({ dir: join(dir, 'layout'), tag: 'huge', layers: [{ sizeBytes: 1024 * MiB, seed: 'bench-huge' }] });
    const registry = await startRegistry();
    await pushImage({ layoutDir: image.layoutDir, tag: 'big', registry: registry.host, repository: 'bench/big' });
    await pushImage({ layoutDir: huge.layoutDir, tag: 'huge', registry: registry.host, repository: 'bench/huge' });
    const ref = `${registry.host}/bench/big:big`;
    const imageMiB = image.totalBytes / MiB;
    log(`image ${imageMiB.toFixed(0)} MiB in ${image.layers.length} layers; ${RUNS} runs`);

    const times = { direct: [] as number[], cold: [] as number[], warm: [] as number[] };
    const cpu = { direct: [] as CpuCost[], cold: [] as CpuCost[], warm: [] as CpuCost[] };
    const sources: Array<Record<string, unknown>> = [];
    for (let run = 0; run < RUNS; run++) {
      const runDir = join(dir, `run${run}`);
      await mkdir(runDir, { recursive: true });
      const direct = await startContainerd({ name: `direct${run}` });
      const d0 = await withCpu({}, { registry: registry.process.pid }, () => direct.pull(ref, { hostsDir: null, plainHttp: true }));
      times.direct.push(d0.result.durationMs / 1000);
      cpu.direct.push(d0.cost);
      await direct.stop();

      const shoal = await startShoal(runDir, registry, 2);
      const [a, b] = shoal.nodes;
      if (a === undefined || b === undefined) throw new Error('two nodes expected');
      const ca = await startContainerd({ name: `cold${run}` });
      await containerdConfig(ca.hostsDir, a.proxyUrl, registry.host);
      const shoalPids = { supernode: shoal.supernode.pid, 'node A': a.process.pid, 'node B': b.process.pid };
      const registryPid = { registry: registry.process.pid };
      const d1 = await withCpu(shoalPids, registryPid, () => ca.pull(ref));
      times.cold.push(d1.result.durationMs / 1000);
      cpu.cold.push(d1.cost);
      await ca.stop();
      const cb = await startContainerd({ name: `warm${run}` });
      await containerdConfig(cb.hostsDir, b.proxyUrl, registry.host);
      const d2 = await withCpu(shoalPids, registryPid, () => cb.pull(ref));
      times.warm.push(d2.result.durationMs / 1000);
      cpu.warm.push(d2.cost);
      await cb.stop();
      sources.push({ run, nodeA: await sourcesOf(a.proxyUrl), nodeB: await sourcesOf(b.proxyUrl) });
      const cpuText = (c: CpuCost | undefined): string => `${c?.machineCpuS.toFixed(1)} CPU-s (Shoal ${c?.shoalCpuS.toFixed(1)})`;
      log(
        `run ${run}: direct ${times.direct[run]?.toFixed(2)} s, ${cpuText(cpu.direct[run])}; cold ${times.cold[run]?.toFixed(2)} s, ${cpuText(cpu.cold[run])}; warm ${times.warm[run]?.toFixed(2)} s, ${cpuText(cpu.warm[run])}`,
      );

      if (run === RUNS - 1) {
        // Throughput of a cached blob: node A holds every layer now.
        const big = image.layers[0];
        if (big === undefined) throw new Error('no layer');
        const ns = `ns=${encodeURIComponent(registry.host)}`;
        const viaProxy: number[] = [];
        const viaRegistry: number[] = [];
        // The pulls left GiBs of dirty pages: flushed first, so the kernel's writeback
        // does not take CPU from one side of the comparison and not the other.
        await runChecked('sync', []);
        for (let i = 0; i < 5; i++) {
          viaRegistry.push(await curlSpeed(`${registry.url}/v2/bench/big/blobs/${big.digest}`));
          viaProxy.push(await curlSpeed(`${a.proxyUrl}/v2/bench/big/blobs/${big.digest}?${ns}`));
        }
        Object.assign(throughput, { proxyMiBps: median(viaProxy), registryMiBps: median(viaRegistry) });

        // Peak RSS of node B while 4 clients fetch a 1 GiB blob at once: cold (swarm path), then cached.
        const layer = huge.layers[0];
        if (layer === undefined) throw new Error('no layer');
        for (const phase of ['cold', 'cached'] as const) {
          let peak = 0;
          let sampling = true;
          const sampler = (async () => {
            while (sampling) {
              peak = Math.max(peak, await rssMiB(b.process.pid));
              await new Promise((r) => setTimeout(r, 100));
            }
          })();
          const started = Date.now();
          await Promise.all(Array.from({ length: 4 }, () => curlSpeed(`${b.proxyUrl}/v2/bench/huge/blobs/${layer.digest}?ns=${encodeURIComponent(registry.host)}`)));
          sampling = false;
          await sampler;
          rss[phase] = { peakMiB: peak, seconds: (Date.now() - started) / 1000 };
          log(`RSS ${phase}: peak ${peak.toFixed(0)} MiB`);
        }
      }
      await shoal.stop();
    }
    const gets = await registry.blobGets();
    await registry.stop();

    const d = median(times.direct);
    const result = {
      date: new Date().toISOString(),
      imageMiB,
      layers: image.layers.map((l) => l.sizeBytes / MiB),
      runs: RUNS,
      seconds: times,
      cpuSeconds: cpu,
      medianCpuSeconds: Object.fromEntries(
        (['direct', 'cold', 'warm'] as const).map((k) => [k, { machine: median(cpu[k].map((c) => c.machineCpuS)), shoal: median(cpu[k].map((c) => c.shoalCpuS)) }]),
      ),
      medianSeconds: { direct: d, cold: median(times.cold), warm: median(times.warm) },
      /** CPU-seconds per GiB of image, per process, median over runs: cold (node A pulls, supernode fetches), warm (node B pulls from the swarm). */
      cpuPerGiB: Object.fromEntries(
        (['direct', 'cold', 'warm'] as const).map((k) => [
          k,
          Object.fromEntries(['supernode', 'node A', 'node B', 'registry'].map((name) => [name, median(cpu[k].map((c) => (c.byProcess[name] ?? Number.NaN) / (image.totalBytes / GiB)))])),
        ]),
      ) as Record<'direct' | 'cold' | 'warm', Record<string, number>>,
      medianMachineBusy: Object.fromEntries((['direct', 'cold', 'warm'] as const).map((k) => [k, median(cpu[k].map((c) => c.machineBusy))])) as Record<'direct' | 'cold' | 'warm', number>,
      ratioToDirect: { cold: median(times.cold) / d, warm: median(times.warm) / d },
      throughput,
      throughputRatio: throughput.proxyMiBps / throughput.registryMiBps,
      rss,
      sources,
      registryBlobGets: Object.fromEntries(gets),
    };
    await mkdir(RESULTS_DIR, { recursive: true });
    const file = join(RESULTS_DIR, `bench-pull-${result.date.replace(/[:.]/g, '-')}.json`);
    await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(
      [
        `| measure | value | target |`,
        `| --- | --- | --- |`,
        `| direct pull (median of ${RUNS}) | ${d.toFixed(2)} s | baseline |`,
        `| Shoal cold / direct | ${result.ratioToDirect.cold.toFixed(2)}× (${result.medianSeconds.cold.toFixed(2)} s) | ≤ 1.15× |`,
        `| Shoal warm, 2nd node / direct | ${result.ratioToDirect.warm.toFixed(2)}× (${result.medianSeconds.warm.toFixed(2)} s) | ≤ 1.0× |`,
        `| cached blob: proxy / registry (curl) | ${(result.throughputRatio * 100).toFixed(0)} % (${throughput.proxyMiBps.toFixed(0)} vs ${throughput.registryMiBps.toFixed(0)} MiB/s) | ≥ 60 % |`,
        `| machine CPU per pull: direct / cold / warm | ${(['direct', 'cold', 'warm'] as const).map((k) => result.medianCpuSeconds[k]?.machine.toFixed(1)).join(' / ')} CPU-s (Shoal's processes: cold ${result.medianCpuSeconds.cold?.shoal.toFixed(1)}, warm ${result.medianCpuSeconds.warm?.shoal.toFixed(1)}) | 2 cores |`,
        `| CPU-s per GiB, cold pull: supernode / node agent / docker-registry | ${['supernode', 'node A', 'registry'].map((n) => result.cpuPerGiB.cold[n]?.toFixed(2)).join(' / ')} | ≤ 3 per Shoal process |`,
        `| CPU-s per GiB, warm pull (2nd node from the swarm): node agent / supernode / docker-registry | ${['node B', 'supernode', 'registry'].map((n) => result.cpuPerGiB.warm[n]?.toFixed(2)).join(' / ')} | |`,
        `| CPU-s per GiB, direct pull: docker-registry | ${result.cpuPerGiB.direct.registry?.toFixed(2)} | |`,
        `| machine CPU busy during the pulls: direct / cold / warm | ${(['direct', 'cold', 'warm'] as const).map((k) => `${(result.medianMachineBusy[k] * 100).toFixed(0)} %`).join(' / ')} | 100 %: the CPU was the limit |`,
        `| node RSS, 4 × 1 GiB cold | ${rss.cold?.peakMiB.toFixed(0)} MiB | < ${NODE_RSS_TARGET_MIB} MiB |`,
        `| node RSS, 4 × 1 GiB cached | ${rss.cached?.peakMiB.toFixed(0)} MiB | < ${NODE_RSS_TARGET_MIB} MiB |`,
        '',
        `results: ${file}`,
        '',
      ].join('\n'),
    );
  } finally {
    if (!args.keep) await removeTempDir(dir);
    else process.stderr.write(`[bench] kept ${dir}\n`);
  }
}

const throughput = { proxyMiBps: 0, registryMiBps: 0 };
const rss: Partial<Record<'cold' | 'cached', { peakMiB: number; seconds: number }>> = {};
await main();
