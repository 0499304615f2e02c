/**
 * `npm run soak` — sustained concurrent pulls against node proxies for several
 * minutes (real docker-registry, `shoal supernode`, `shoal node` processes),
 * every blob verified against its digest. Reports errors, and RSS and open file
 * descriptors of every Shoal process sampled over time: both must stay flat.
 * Options: --minutes N (default 5), --workers N (default 8), --nodes N (default 2).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { parseImageReference } from '@shoal/core';
import { pullImage } from '@shoal/cli';
import { buildImage, makeTempDir, pushImage, removeTempDir, requireTools, startRegistry } from '@shoal/testkit';
import { openFds, rssMiB, ServiceProcess } from './lib/shoal-processes.js';
import { linePlotSvg } from './lib/svg-plot.js';

const MiB = 1024 * 1024;
const USAGE = `usage: npm run soak -- [options]
  --minutes N   how long the pulls go on (5)
  --workers N   concurrent pulling workers (8)
  --nodes N     node agents (2)
  -h, --help    this text
`;
const { values: args } = parseArgs({
  options: { minutes: { type: 'string', default: '5' }, workers: { type: 'string', default: '8' }, nodes: { type: 'string', default: '2' }, help: { type: 'boolean', short: 'h', default: false } },
});
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const durationMs = Number(args.minutes) * 60_000;
const WORKERS = Number(args.workers);
const NODES = Number(args.nodes);
const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));
const DOCS_IMG = fileURLToPath(new URL('../../docs/img/', import.meta.url));

interface Sample { tSec: number; proc: string; rssMiB: number; fds: number }

async function main(): Promise<void> {
  await requireTools(['docker-registry', 'skopeo']);
  const dir = await makeTempDir('shoal-soak');
  const log = (m: string): void => void process.stderr.write(`[soak] ${m}\n`);
  const registry = await startRegistry();
  const services: ServiceProcess[] = [];
  try {
    const images: string[] = [];
    for (let i = 0; i < 6; i++) {
      const image = await buildImage({
        dir: join(dir, `layout${i}`),
        tag: 'v1',
        layers: [{ sizeBytes: (1 + (i % 3) * 3) * MiB, seed: `soak-${i}-a` }, { sizeBytes: 512 * 1024 + i, seed: `soak-${i}-b` }, { sizeBytes: 4 * MiB, seed: `soak-shared` }],
      });
      await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: `soak/img${i}` });
      images.push(`${registry.host}/soak/img${i}:v1`);
    }
    const supernode = await ServiceProcess.supernode(dir, 'supernode', registry.host);
    services.push(supernode);
    await supernode.start();
    const nodes: ServiceProcess[] = [];
    for (let i = 0; i < NODES; i++) {
      const node = await ServiceProcess.node(dir, `node${i}`, [supernode.url], registry.host);
      services.push(node);
      await node.start();
      nodes.push(node);
    }
    log(`${images.length} images, ${NODES} nodes, ${WORKERS} workers, ${args.minutes} min`);

    const samples: Sample[] = [];
    const started = Date.now();
    const sample = async (): Promise<void> => {
      for (const s of services) {
        if (s.pid === undefined) continue;
        samples.push({ tSec: (Date.now() - started) / 1000, proc: s.name, rssMiB: await rssMiB(s.pid), fds: await openFds(s.pid) });
      }
    };
    await sample();
    const sampler = setInterval(() => void sample(), 5_000);
    let pulls = 0;
    let ranges = 0;
    const errors: string[] = [];
    let bytes = 0;
    await Promise.all(
      Array.from({ length: WORKERS }, async (_, w) => {
        let n = w;
        while (Date.now() - started < durationMs) {
          n++;
          const ref = images[n % images.length] as string;
          const node = nodes[(n * 7 + w) % nodes.length] as ServiceProcess;
          try {
            const result = await pullImage({ proxyUrl: node.url, image: parseImageReference(ref), platform: 'linux/amd64' });
            pulls++;
            bytes += result.totalBytes;
            // Now and then a Range read, as containerd does when it resumes.
            const blob = result.blobs[result.blobs.length - 1];
            if (blob !== undefined && n % 5 === 0) {
              const start = Math.floor(blob.bytes / 3);
              const res = await request(`${node.url}/v2/${parseImageReference(ref).repository}/blobs/${blob.digest}?ns=${encodeURIComponent(registry.host)}`, { headers: { range: `bytes=${start}-` } });
              const got = (await res.body.arrayBuffer()).byteLength;
              if (res.statusCode !== 206 || got !== blob.bytes - start) throw new Error(`range answered ${res.statusCode} with ${got} bytes`);
              ranges++;
            }
          } catch (err) {
            errors.push(`${ref} via ${node.name}: ${(err as Error).message}`);
          }
        }
      }),
    );
    clearInterval(sampler);
    await sample();
    const byProc = new Map<string, Sample[]>();
    for (const s of samples) byProc.set(s.proc, [...(byProc.get(s.proc) ?? []), s]);
    const summary = [...byProc].map(([proc, xs]) => {
      const warm = xs.filter((x) => x.tSec >= 30);
      const steady = warm.length > 1 ? warm : xs;
      return {
        proc,
        rssStartMiB: xs[0]?.rssMiB ?? 0,
        rssAfter30sMiB: steady[0]?.rssMiB ?? 0,
        rssEndMiB: xs[xs.length - 1]?.rssMiB ?? 0,
        rssMaxMiB: Math.max(...xs.map((x) => x.rssMiB)),
        fdsStart: xs[0]?.fds ?? 0,
        fdsEnd: xs[xs.length - 1]?.fds ?? 0,
        fdsMax: Math.max(...xs.map((x) => x.fds)),
      };
    });
    const crashes = services.flatMap((s) => s.crashes);
    const result = { date: new Date().toISOString(), minutes: Number(args.minutes), workers: WORKERS, nodes: NODES, pulls, ranges, errors: errors.length, errorSamples: errors.slice(0, 10), crashes, gibServed: bytes / 1024 ** 3, summary, samples };
    await mkdir(RESULTS_DIR, { recursive: true });
    await writeFile(join(RESULTS_DIR, `soak-${result.date.replace(/[:.]/g, '-')}.json`), `${JSON.stringify(result, null, 2)}\n`);
    await mkdir(DOCS_IMG, { recursive: true });
    await writeFile(
      join(DOCS_IMG, 'soak-rss.svg'),
      linePlotSvg({ title: 'Soak: RSS per process (MiB) over time (s)', series: [...byProc].map(([name, xs]) => ({ name, points: xs.map((x) => [x.tSec, x.rssMiB] as [number, number]) })) }),
    );
    await writeFile(
      join(DOCS_IMG, 'soak-fds.svg'),
      linePlotSvg({ title: 'Soak: open file descriptors per process over time (s)', series: [...byProc].map(([name, xs]) => ({ name, points: xs.map((x) => [x.tSec, x.fds] as [number, number]) })) }),
    );
    process.stdout.write(
      [
        `soak: ${pulls} pulls (${ranges} range reads, ${(bytes / 1024 ** 3).toFixed(1)} GiB verified) in ${args.minutes} min, ${errors.length} errors`,
        '| process | RSS start | RSS at 30 s | RSS end | RSS max | fds start | fds end | fds max |',
        '| --- | --- | --- | --- | --- | --- | --- | --- |',
        ...summary.map((s) => `| ${s.proc} | ${s.rssStartMiB.toFixed(0)} | ${s.rssAfter30sMiB.toFixed(0)} | ${s.rssEndMiB.toFixed(0)} | ${s.rssMaxMiB.toFixed(0)} | ${s.fdsStart} | ${s.fdsEnd} | ${s.fdsMax} |`),
        ...errors.slice(0, 10).map((e) => `error: ${e}`),
        `services that exited on their own (crashes): ${crashes.length}`,
        ...crashes.slice(0, 5).map((c) => `crash: ${c.name} (${c.exit})\n${c.tail}`),
        '',
      ].join('\n'),
    );
    if (errors.length > 0 || crashes.length > 0) process.exitCode = 1;
  } finally {
    for (const s of services) await s.stop().catch(() => undefined);
    await registry.stop();
    await removeTempDir(dir);
  }
}

await main();
