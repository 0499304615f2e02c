/**
 * The CPU a node spends sending a blob it holds (a warm read): a real
 * docker-registry, `shoal supernode` and `shoal node` as processes on loopback;
 * one blob of SHOAL_BENCH_BLOB_MIB (default 512) MiB is pulled once through the
 * node's proxy (which caches it), then read READS (5) times through the proxy
 * while the node process's CPU (user + system, /proc/<pid>/stat) is counted.
 * Prints CPU-seconds per GiB sent and the machine's busy share.
 *
 *   npx tsc -b && node load-tests/dist/bench-warm-read.js
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { request } from 'undici';
import { buildImage, makeTempDir, pushImage, removeTempDir, startRegistry } from '@shoal/testkit';
import { ServiceProcess } from './lib/shoal-processes.js';
import { machineCpuSeconds, processCpuSeconds } from './netns/cpu.js';

const MiB = 1024 * 1024;
const READS = 5;
const BLOB_MIB = Number(process.env.SHOAL_BENCH_BLOB_MIB ?? 512);

/** GETs the blob through the proxy; the body's length, its X-Shoal-Source, and whether it hashed to the digest (when asked). */
async function get(url: string, check: boolean): Promise<{ bytes: number; source: string; sound: boolean | undefined }> {
  const res = await request(url);
  const hash = check ? createHash('sha256') : undefined;
  let bytes = 0;
  for await (const chunk of res.body) {
    bytes += (chunk as Buffer).length;
    hash?.update(chunk as Buffer);
  }
  const source = String(res.headers['x-shoal-source']);
  return { bytes, source, sound: hash === undefined ? undefined : `sha256:${hash.digest('hex')}` === url.slice(url.lastIndexOf('/') + 1, url.indexOf('?')) };
}

async function main(): Promise<void> {
  const dir = await makeTempDir('shoal-bench-warm');
  const registry = await startRegistry();
  const supernode = await ServiceProcess.supernode(dir, 'supernode', registry.host);
  await supernode.start();
  const node = await ServiceProcess.node(dir, 'node', [supernode.url], registry.host);
  await node.start();
  try {
    const image = await buildImage({ dir: join(dir, 'layout'), tag: 'v1', layers: [{ sizeBytes: BLOB_MIB * MiB, seed: 'warm-read' }], gzipLevel: 0 });
    await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: 'bench/warm' });
    const layer = image.layers[0];
    if (layer === undefined) throw new Error('no layer');
    const url = `${node.url}/v2/bench/warm/blobs/${layer.digest}?ns=${encodeURIComponent(registry.host)}`;
    const cold = await get(url, true);
    if (cold.bytes !== layer.sizeBytes || cold.sound !== true) throw new Error(`cold read: ${JSON.stringify(cold)}`);
    // The node makes its copy complete (digest, datasync, rename) after the cold read has
    // ended; until then a read is still answered through the swarm.
    let check = await get(url, true);
    for (let tries = 1; check.source !== 'local' && tries < 10; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      check = await get(url, true);
    }
    if (check.source !== 'local' || check.sound !== true) throw new Error(`the blob is not served sound from the node's cache: ${JSON.stringify(check)}`);
    const pid = node.pid;
    if (pid === undefined) throw new Error('node not running');
    const [c0, m0, t0] = [await processCpuSeconds(pid), await machineCpuSeconds(), performance.now()];
    for (let i = 0; i < READS; i++) {
      const r = await get(url, false);
      if (r.bytes !== layer.sizeBytes || r.source !== 'local') throw new Error(`read ${i}: ${JSON.stringify(r)}`);
    }
    const [c1, m1, t1] = [await processCpuSeconds(pid), await machineCpuSeconds(), performance.now()];
    const gib = (READS * layer.sizeBytes) / 1024 ** 3;
    const seconds = (t1 - t0) / 1000;
    console.log(
      JSON.stringify({
        blobBytes: layer.sizeBytes,
        reads: READS,
        nodeCpuS: +(c1 - c0).toFixed(2),
        nodeCpuSPerGiB: +((c1 - c0) / gib).toFixed(3),
        wallS: +seconds.toFixed(2),
        MiBps: +((READS * layer.sizeBytes) / MiB / seconds).toFixed(0),
        machineBusyShare: +((m1.busy - m0.busy) / Math.max(0.01, m1.total - m0.total)).toFixed(2),
      }),
    );
  } finally {
    await node.stop();
    await supernode.stop();
    await registry.stop();
    await removeTempDir(dir);
  }
}

await main();
