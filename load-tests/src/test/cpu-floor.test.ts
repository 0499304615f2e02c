/**
 * bench:cpu's floor (cpu-floor.ts) moves a real registry's blob through its two bare
 * processes intact, and refuses bytes that do not match: a floor that passed on wrong
 * bytes, or a short blob, would measure less work than Shoal does.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import test from 'ava';
import { request } from 'undici';
import { answersOnOwnPorts, buildImage, freePort, makeTempDir, minimalEnv, pushImage, removeTempDir, requireTools, spawnProcess, startRegistry, waitFor } from '@shoal/testkit';

const FLOOR = fileURLToPath(new URL('../cpu-floor.js', import.meta.url));
const MiB = 1024 * 1024;

test('the floor passes a blob on whole and verified, and fails a blob whose digest does not match', async (t) => {
  t.timeout(120_000);
  await requireTools(['docker-registry', 'skopeo']);
  const dir = await makeTempDir('shoal-cpu-floor');
  const closers: Array<() => Promise<unknown>> = [];
  t.teardown(async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    await removeTempDir(dir);
  });
  const registry = await startRegistry({});
  closers.push(() => registry.stop());
  // 5.5 MiB: pieces of 1 MiB and a short last one.
  const image = await buildImage({ dir: join(dir, 'layout'), tag: 'v1', layers: [{ sizeBytes: 5.5 * MiB, seed: 'cpu-floor' }], gzipLevel: 0 });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: 'floor/test' });
  const layer = image.layers[0];
  if (layer === undefined) throw new Error('one layer expected');

  const [seedPort, sinkPort] = [await freePort(), await freePort()];
  const seed = await spawnProcess({ name: 'floor-seed', command: process.execPath, args: [FLOOR, 'seed', `http://${registry.host}`, dir, String(seedPort)], env: minimalEnv(), logDir: dir });
  closers.push(() => seed.stop());
  const sink = await spawnProcess({ name: 'floor-sink', command: process.execPath, args: [FLOOR, 'sink', `http://127.0.0.1:${seedPort}`, dir, String(sinkPort)], env: minimalEnv(), logDir: dir });
  closers.push(() => sink.stop());
  // Ready, and on its own port (another test's server may have taken a freePort port first).
  await waitFor(answersOnOwnPorts(seed, `http://127.0.0.1:${seedPort}/readyz`, [seedPort]), { process: seed, description: 'floor seed ready' });
  await waitFor(answersOnOwnPorts(sink, `http://127.0.0.1:${sinkPort}/readyz`, [sinkPort]), { process: sink, description: 'floor sink ready' });

  const fetchBlob = async (path: string, size: number): Promise<{ status: number; sha256: string; bytes: number; error?: string }> => {
    const res = await request(`http://127.0.0.1:${sinkPort}/blob?path=${encodeURIComponent(path)}&size=${size}`);
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      for await (const chunk of res.body) {
        hash.update(chunk as Buffer);
        bytes += (chunk as Buffer).length;
      }
    } catch (err) {
      return { status: res.statusCode, sha256: '', bytes, error: (err as Error).message };
    }
    return { status: res.statusCode, sha256: `sha256:${hash.digest('hex')}`, bytes };
  };

  const good = await fetchBlob(`/v2/floor/test/blobs/${layer.digest}`, layer.sizeBytes);
  t.is(good.status, 200);
  t.is(good.bytes, layer.sizeBytes);
  t.is(good.sha256, layer.digest);

  // Rot in the registry's storage (docker-registry serves its file as it is): every piece hashes as sent, but the
  // blob does not match its digest, so the seed never serves the last piece and the sink's response ends short.
  // A query the registry ignores makes it a new fill at the seed.
  const hex = layer.digest.slice('sha256:'.length);
  const file = join(registry.dataDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
  const fh = await open(file, 'r+');
  await fh.write(Buffer.from([0x5a ^ 0xff]), 0, 1, 2 * MiB + 7);
  await fh.close();
  const bad = await fetchBlob(`/v2/floor/test/blobs/${layer.digest}?n=2`, layer.sizeBytes);
  t.true(bad.bytes < layer.sizeBytes, `the sink passed on ${bad.bytes} of ${layer.sizeBytes} bytes`);
});
