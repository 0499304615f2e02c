/**
 * OCI image layout writing: layers as reproducible gzip'd tars of a directory,
 * image configs, manifests, a multi-platform index, and the archive
 * (`oci-archive`: a tar of the layout) that `ctr images import`, `skopeo` and
 * `podman load` read. Every blob is streamed through its hash; nothing holds a
 * layer in memory.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, constants as zlib } from 'node:zlib';

export const MEDIA_TYPES = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

/** A layer blob: its compressed descriptor and the digest of its uncompressed tar (the config's diff_id). */
export interface Layer {
  descriptor: Descriptor;
  diffId: string;
  uncompressedBytes: number;
  /** What the layer holds, for the image history. */
  comment: string;
}

class HashTap extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}

export interface TarOptions {
  /** Every entry's mtime (seconds since the epoch): the same input gives the same bytes. */
  mtimeSec: number;
  /** Force uid/gid 0 on every entry (staged app files); false keeps the tree's own (a rootfs). */
  rootOwned: boolean;
  signal?: AbortSignal;
}

/**
 * Writes `dir` as a gzip'd tar into `blobsDir` (named by its digest) and
 * returns the layer. GNU tar sorts names and fixes mtimes and owners, gzip
 * writes no name or time, so an unchanged tree gives an unchanged digest.
 */
export async function tarLayer(dir: string, blobsDir: string, comment: string, options: TarOptions): Promise<Layer> {
  await mkdir(blobsDir, { recursive: true });
  const args = ['--create', '--file=-', '--format=gnu', '--sort=name', `--mtime=@${options.mtimeSec}`, '--numeric-owner', '--directory', dir];
  if (options.rootOwned) args.push('--owner=0', '--group=0');
  args.push('.');
  const tar = spawn('tar', args, { stdio: ['ignore', 'pipe', 'pipe'], signal: options.signal });
  let stderr = '';
  tar.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-4000);
  });
  const exited = new Promise<void>((resolve, reject) => {
    tar.once('error', reject);
    tar.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar of ${dir} exited ${code}: ${stderr}`))));
  });
  const diff = new HashTap();
  const compressed = new HashTap();
  const temp = join(blobsDir, `.layer-${process.pid}-${Date.now()}`);
  await Promise.all([
    pipeline(tar.stdout, diff, createGzip({ level: zlib.Z_DEFAULT_COMPRESSION }), compressed, createWriteStream(temp), options.signal ? { signal: options.signal } : {}),
    exited,
  ]);
  const digest = `sha256:${compressed.hash.digest('hex')}`;
  await rename(temp, join(blobsDir, digest.slice('sha256:'.length)));
  return {
    descriptor: { mediaType: MEDIA_TYPES.layer, digest, size: compressed.bytes },
    diffId: `sha256:${diff.hash.digest('hex')}`,
    uncompressedBytes: diff.bytes,
    comment,
  };
}

/** Writes a JSON blob (config, manifest, index) into `blobsDir` and returns its descriptor. */
export async function writeJsonBlob(blobsDir: string, mediaType: string, value: unknown): Promise<Descriptor> {
  const bytes = Buffer.from(JSON.stringify(value));
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await mkdir(blobsDir, { recursive: true });
  await writeFile(join(blobsDir, digest.slice('sha256:'.length)), bytes);
  return { mediaType, digest, size: bytes.length };
}

export interface Platform {
  /** OCI architecture: amd64 | arm64. */
  architecture: 'amd64' | 'arm64';
  variant?: string;
}

export interface ImageConfig {
  user: string;
  env: string[];
  entrypoint: string[];
  cmd: string[];
  workingDir: string;
  volumes: string[];
  labels: Record<string, string>;
  created: string;
}

/** One platform's image: config and manifest blobs; returns the manifest's descriptor with its platform. */
export async function writeImage(blobsDir: string, platform: Platform, layers: readonly Layer[], config: ImageConfig): Promise<Descriptor> {
  const configBlob = await writeJsonBlob(blobsDir, MEDIA_TYPES.config, {
    created: config.created,
    architecture: platform.architecture,
    ...(platform.variant === undefined ? {} : { variant: platform.variant }),
    os: 'linux',
    config: {
      User: config.user,
      Env: config.env,
      Entrypoint: config.entrypoint,
      Cmd: config.cmd,
      WorkingDir: config.workingDir,
      Volumes: Object.fromEntries(config.volumes.map((v) => [v, {}])),
      Labels: config.labels,
      StopSignal: 'SIGTERM',
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((l) => ({ created: config.created, created_by: l.comment })),
  });
  const manifest = await writeJsonBlob(blobsDir, MEDIA_TYPES.manifest, {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config: configBlob,
    layers: layers.map((l) => l.descriptor),
    annotations: { 'org.opencontainers.image.created': config.created, ...pick(config.labels, ['org.opencontainers.image.version', 'org.opencontainers.image.source']) },
  });
  return { ...manifest, platform: { architecture: platform.architecture, os: 'linux', ...(platform.variant === undefined ? {} : { variant: platform.variant }) } };
}

function pick(from: Record<string, string>, keys: readonly string[]): Record<string, string> {
  return Object.fromEntries(keys.filter((k) => from[k] !== undefined).map((k) => [k, from[k] ?? '']));
}

/**
 * The layout's `index.json`: one entry per reference, each pointing at the
 * multi-platform index. `io.containerd.image.name` is the name `ctr images
 * import` gives the image; `org.opencontainers.image.ref.name` is what
 * `skopeo ... oci-archive:FILE:REF` and `podman load` select by.
 */
export async function writeLayout(layoutDir: string, manifests: readonly Descriptor[], references: readonly string[]): Promise<Descriptor> {
  const blobsDir = join(layoutDir, 'blobs/sha256');
  const index = await writeJsonBlob(blobsDir, MEDIA_TYPES.index, { schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests });
  await writeFile(join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(layoutDir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.index,
      manifests: references.map((ref) => ({ ...index, annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': ref } })),
    }),
  );
  return index;
}

/** Tars the layout into one OCI archive file (uncompressed: its blobs already are). */
export async function writeArchive(layoutDir: string, file: string, mtimeSec: number, signal?: AbortSignal): Promise<number> {
  const temp = `${file}.tmp-${process.pid}`;
  const tar = spawn('tar', ['--create', `--file=${temp}`, '--format=gnu', '--sort=name', `--mtime=@${mtimeSec}`, '--owner=0', '--group=0', '--numeric-owner', '--directory', layoutDir, 'oci-layout', 'index.json', 'blobs'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    signal,
  });
  const err = new PassThrough();
  tar.stderr.pipe(err);
  let stderr = '';
  err.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-4000);
  });
  await new Promise<void>((resolve, reject) => {
    tar.once('error', reject);
    tar.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar of ${layoutDir} exited ${code}: ${stderr}`))));
  });
  await rename(temp, file);
  return (await stat(file)).size;
}
