/**
 * The Node.js runtime the Shoal image ships, for benchmarks that should run the Shoal
 * processes as a cluster runs them (`bench:swarm --shoal-runtime image`). The binary is
 * taken from the image archive itself (`dist/shoal-image.oci.tar`, which `npm run image`
 * and `npm test` build): its index, this machine's platform manifest, and the layer that
 * holds `usr/local/bin/node`.
 */
import { access, mkdir } from 'node:fs/promises';
import { arch } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runChecked } from '@shoal/testkit';

export const IMAGE_ARCHIVE = fileURLToPath(new URL('../../../dist/shoal-image.oci.tar', import.meta.url));
const NODE_IN_IMAGE = 'usr/local/bin/node';
const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);

interface OciDescriptor {
  mediaType?: string;
  digest: string;
  platform?: { os?: string; architecture?: string };
}

/** `tar -xOf archive member`: one member of the image archive, as text. */
async function member(archive: string, path: string): Promise<string> {
  return (await runChecked('tar', ['-xOf', archive, path])).stdout;
}

function blobPath(digest: string): string {
  if (!/^sha256:[a-f0-9]{64}$/.test(digest)) throw new Error(`the image archive names an invalid digest ${JSON.stringify(digest)}`);
  return `blobs/sha256/${digest.slice('sha256:'.length)}`;
}

/**
 * Extracts the image's node binary for this machine's architecture into `dir` (once:
 * an extracted binary is reused) and returns its path and `--version`.
 */
export async function imageNodeBinary(dir: string, archive = IMAGE_ARCHIVE): Promise<{ path: string; version: string }> {
  await access(archive).catch(() => {
    throw new Error(`${archive} is missing: build the image first (npm run image)`);
  });
  const architecture = arch() === 'x64' ? 'amd64' : arch();
  let manifests = (JSON.parse(await member(archive, 'index.json')) as { manifests: OciDescriptor[] }).manifests;
  // index.json → the image index → one manifest per platform.
  while (manifests.length > 0 && manifests.every((m) => INDEX_TYPES.has(m.mediaType ?? ''))) {
    manifests = (JSON.parse(await member(archive, blobPath((manifests[0] as OciDescriptor).digest))) as { manifests: OciDescriptor[] }).manifests;
  }
  const mine = manifests.find((m) => m.platform?.os === 'linux' && m.platform.architecture === architecture);
  if (mine === undefined) throw new Error(`the image has no linux/${architecture} manifest`);
  const { layers } = JSON.parse(await member(archive, blobPath(mine.digest))) as { layers: OciDescriptor[] };
  const out = join(dir, `node-${mine.digest.slice('sha256:'.length, 'sha256:'.length + 12)}`);
  const path = join(out, NODE_IN_IMAGE);
  const extracted = await access(path).then(
    () => true,
    () => false,
  );
  if (!extracted) {
    await mkdir(out, { recursive: true });
    for (const layer of layers) {
      const blob = join(out, 'layer');
      await runChecked('tar', ['-xf', archive, '-C', out, blobPath(layer.digest)]);
      await runChecked('mv', [join(out, blobPath(layer.digest)), blob]);
      const listing = (await runChecked('tar', ['-tf', blob])).stdout.split('\n');
      if (listing.includes(NODE_IN_IMAGE) || listing.includes(`./${NODE_IN_IMAGE}`)) {
        await runChecked('tar', ['-xf', blob, '-C', out, listing.includes(NODE_IN_IMAGE) ? NODE_IN_IMAGE : `./${NODE_IN_IMAGE}`]);
        break;
      }
    }
    await runChecked('rm', ['-rf', join(out, 'blobs'), join(out, 'layer')]);
    await access(path).catch(() => {
      throw new Error(`no layer of the image's linux/${architecture} manifest holds ${NODE_IN_IMAGE}`);
    });
  }
  // A binary that cannot run here (a truncated extract, another libc) fails now, before any host exists.
  const version = (await runChecked(path, ['--version'])).stdout.trim();
  return { path, version };
}
