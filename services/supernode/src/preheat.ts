import { randomUUID } from 'node:crypto';
import {
  destroyQuietly,
  readBounded,
  DigestMismatchError,
  digestOf,
  isDigest,
  isIndexMediaType,
  isManifestMediaType,
  MANIFEST_ACCEPT,
  MAX_BLOB_SIZE_BYTES,
  MAX_PREHEAT_BLOBS,
  ShoalError,
  systemClock,
  UpstreamError,
  type Clock,
  type Digest,
  type ImageReference,
  type Logger,
  type PreheatBlobState,
  type PreheatJob,
  type PreheatJobState,
} from '@shoal/core';
import type { PieceStoreApi } from '@shoal/store';
import type { RegistryClientApi } from '@shoal/registry-client';
import { UpstreamDeniedError, type BlobTasks } from './blob-tasks.js';

/** Jobs remembered at once; the oldest finished ones are forgotten first. Jobs. */
export const DEFAULT_MAX_PREHEAT_JOBS = 100;
/** Blobs of one job started at once (BlobTasks also caps back-to-source fetches globally). Blobs. */
export const DEFAULT_PREHEAT_BLOB_CONCURRENCY = 4;
/** Manifests and indexes are small; a larger answer is refused rather than buffered. Bytes: 4 MiB. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Manifests chosen from one index at most (each costs a registry request while the client waits). */
export const MAX_PREHEAT_MANIFESTS = 64;
/** How long resolving the image (tag, index, manifests) may take before the request fails. Milliseconds. */
export const PREHEAT_RESOLVE_TIMEOUT_MS = 60_000;

/** Docker's buildx marks attestation manifests in an index with this annotation (and platform unknown/unknown). */
const REFERENCE_TYPE_ANNOTATION = 'vnd.docker.reference.type';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string | undefined;
}

/** One entry of an index, or a config or layer of a manifest, as read from the registry. */
export interface Descriptor {
  mediaType: string | undefined;
  digest: Digest;
  sizeBytes: number;
  platform: Platform | undefined;
  annotations: Readonly<Record<string, string>>;
}

export type ParsedManifest =
  | { kind: 'index'; mediaType: string | undefined; manifests: Descriptor[] }
  | { kind: 'manifest'; mediaType: string | undefined; config: Descriptor; layers: Descriptor[] };

/** The registry has no manifest for this reference (its 404). */
export class ManifestUnknownError extends ShoalError {
  constructor(reference: string) {
    super(`manifest unknown: ${reference} (the registry answered 404)`, 'SHOAL_MANIFEST_UNKNOWN', 404, 'MANIFEST_UNKNOWN');
  }
}

/** A platform asked for is not in the image's index. */
export class PlatformUnknownError extends ShoalError {
  constructor(platform: string, reference: string, available: readonly string[]) {
    const list = available.length === 0 ? 'no platforms' : available.join(', ');
    super(`no manifest for platform ${platform} in ${reference} (the index has ${list})`, 'SHOAL_PLATFORM_UNKNOWN', 404, 'MANIFEST_UNKNOWN');
  }
}

/** The image is something preheat cannot walk (schema 1, a nested index, too many blobs...). */
export class PreheatUnsupportedError extends ShoalError {
  constructor(message: string) {
    super(message, 'SHOAL_PREHEAT_UNSUPPORTED', 422, 'UNSUPPORTED');
  }
}

export class PreheatJobUnknownError extends ShoalError {
  constructor(id: string) {
    super(`preheat job ${id} is unknown (never started here, or forgotten)`, 'SHOAL_PREHEAT_JOB_UNKNOWN', 404, 'UNKNOWN');
  }
}

/** Every remembered job is still running: no room for another. */
export class PreheatBusyError extends ShoalError {
  constructor(running: number) {
    super(`${running} preheat jobs are running; try again when one has finished`, 'SHOAL_PREHEAT_BUSY', 503, 'TOOMANYREQUESTS');
  }
}

const ARCH_ALIASES: Readonly<Record<string, Platform>> = {
  x86_64: { os: '', architecture: 'amd64' },
  'x86-64': { os: '', architecture: 'amd64' },
  aarch64: { os: '', architecture: 'arm64' },
  armhf: { os: '', architecture: 'arm', variant: 'v7' },
  armel: { os: '', architecture: 'arm', variant: 'v6' },
  i386: { os: '', architecture: '386' },
};

/**
 * The platform in containerd's normal form (platforms.Normalize): architecture
 * aliases resolved, `arm64/v8` is `arm64`, a bare `arm` is `arm/v7`. Both the
 * request and the index entries are normalised before they are compared.
 */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant === undefined || p.variant === '' ? undefined : p.variant.toLowerCase();
  const alias = ARCH_ALIASES[architecture];
  if (alias !== undefined) {
    architecture = alias.architecture;
    variant = variant ?? alias.variant;
  }
  if (architecture === 'arm64' && variant === 'v8') variant = undefined;
  if (architecture === 'arm' && variant === undefined) variant = 'v7';
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

/** `os/arch[/variant]`, already checked against PLATFORM_PATTERN by the wire schema. */
export function parsePlatform(text: string): Platform {
  const [os = '', architecture = '', variant] = text.split('/');
  return { os, architecture, variant };
}

export function platformText(p: Platform): string {
  return p.variant === undefined || p.variant === '' ? `${p.os}/${p.architecture}` : `${p.os}/${p.architecture}/${p.variant}`;
}

/** Attestations (provenance, SBOM) that buildx puts in an index: not runnable, never pulled by containerd. */
export function isAttestation(d: Descriptor): boolean {
  if (d.annotations[REFERENCE_TYPE_ANNOTATION] === 'attestation-manifest') return true;
  return d.platform?.os === 'unknown' && d.platform.architecture === 'unknown';
}

/** A requested platform matches an entry with the same OS and architecture, and the same variant when one was asked for. */
function platformMatches(entry: Platform, wanted: Platform): boolean {
  const e = normalizePlatform(entry);
  const w = normalizePlatform(wanted);
  return e.os === w.os && e.architecture === w.architecture && (w.variant === undefined || e.variant === w.variant);
}

/**
 * The manifests of an index to preheat; attestations (`unknown/unknown`)
 * never. Without `wanted`: every other entry. With it: the entries matching
 * each wanted platform (a platform without a variant matches every variant of
 * its architecture, after normalizePlatform); each wanted platform must match
 * at least one entry. An entry
 * without a platform matches any request, as in containerd's platform
 * matcher. The result holds each digest once, in index order.
 */
export function selectManifests(manifests: readonly Descriptor[], wanted: readonly Platform[] | undefined, reference: string): Descriptor[] {
  const chosen = new Set<Descriptor>();
  if (wanted === undefined) {
    for (const d of manifests) if (!isAttestation(d)) chosen.add(d);
  } else {
    for (const w of wanted) {
      const matches = manifests.filter((d) => !isAttestation(d) && (d.platform === undefined || platformMatches(d.platform, w)));
      if (matches.length === 0) {
        const available = [...new Set(manifests.filter((d) => d.platform !== undefined && !isAttestation(d)).map((d) => platformText(d.platform as Platform)))];
        throw new PlatformUnknownError(platformText(w), reference, available);
      }
      for (const d of matches) chosen.add(d);
    }
  }
  const seen = new Set<Digest>();
  return manifests.filter((d) => {
    if (!chosen.has(d) || seen.has(d.digest)) return false;
    seen.add(d.digest);
    return true;
  });
}

// --- parsing what the registry sent --------------------------------------------

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function optionalString(value: unknown, max = 200): string | undefined {
  return typeof value === 'string' && value.length <= max ? value : undefined;
}

function parseDescriptor(value: unknown, where: string): Descriptor {
  const d = asRecord(value);
  const digest = d?.digest;
  const size = d?.size;
  if (d === undefined || typeof digest !== 'string' || !isDigest(digest)) {
    throw new UpstreamError(`${where}: a descriptor without a valid sha256 digest`, 502, 200);
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0 || size > MAX_BLOB_SIZE_BYTES) {
    throw new UpstreamError(`${where}: descriptor ${digest} has an invalid size`, 502, 200);
  }
  const p = asRecord(d.platform);
  const os = optionalString(p?.os, 32);
  const architecture = optionalString(p?.architecture, 32);
  const platform = os !== undefined && architecture !== undefined ? { os, architecture, variant: optionalString(p?.variant, 32) } : undefined;
  const annotations: Record<string, string> = {};
  const a = asRecord(d.annotations);
  const referenceType = optionalString(a?.[REFERENCE_TYPE_ANNOTATION]);
  if (referenceType !== undefined) annotations[REFERENCE_TYPE_ANNOTATION] = referenceType;
  return { mediaType: optionalString(d.mediaType), digest, sizeBytes: size, platform, annotations };
}

/**
 * Parses a manifest or index body. The media type is the body's own
 * `mediaType`, else the response's Content-Type, else the shape (OCI makes
 * `mediaType` optional). Schema 1 and anything else is refused.
 */
export function parseManifest(body: Buffer, contentType: string | undefined, where: string): ParsedManifest {
  let json: Record<string, unknown> | undefined;
  try {
    json = asRecord(JSON.parse(body.toString('utf8')));
  } catch {
    json = undefined;
  }
  if (json === undefined) throw new UpstreamError(`${where}: the registry sent a manifest that is not a JSON object`, 502, 200);
  const mediaType = optionalString(json.mediaType) ?? optionalString(contentType?.split(';')[0]?.trim());
  const manifests = json.manifests;
  const layers = json.layers;
  if (isIndexMediaType(mediaType) || (!isManifestMediaType(mediaType) && Array.isArray(manifests) && layers === undefined)) {
    if (!Array.isArray(manifests)) throw new UpstreamError(`${where}: an index without manifests`, 502, 200);
    if (manifests.length > MAX_PREHEAT_BLOBS) throw new PreheatUnsupportedError(`${where}: an index of ${manifests.length} manifests is too large to preheat`);
    return { kind: 'index', mediaType, manifests: manifests.map((m) => parseDescriptor(m, where)) };
  }
  if (isManifestMediaType(mediaType) || (Array.isArray(layers) && json.config !== undefined)) {
    if (!Array.isArray(layers) || json.config === undefined) throw new UpstreamError(`${where}: a manifest without config or layers`, 502, 200);
    if (layers.length > MAX_PREHEAT_BLOBS) throw new PreheatUnsupportedError(`${where}: a manifest of ${layers.length} layers is too large to preheat`);
    return { kind: 'manifest', mediaType, config: parseDescriptor(json.config, where), layers: layers.map((l) => parseDescriptor(l, where)) };
  }
  throw new PreheatUnsupportedError(`${where}: unsupported manifest type ${JSON.stringify(mediaType ?? 'unknown')} (preheat reads OCI and Docker schema 2 manifests and indexes)`);
}

// --- jobs ----------------------------------------------------------------------

export interface PreheatComponents {
  log: Logger;
  store: PieceStoreApi;
  registry: RegistryClientApi;
  /** The same BlobTasks peers go through, so a blob preheated and pulled at once is fetched once. */
  tasks: BlobTasks;
  /** @default systemClock */
  clock?: Clock;
}

export interface PreheatInit {
  /** @default DEFAULT_MAX_PREHEAT_JOBS */
  maxJobs?: number | undefined;
  /** @default DEFAULT_PREHEAT_BLOB_CONCURRENCY */
  blobConcurrency?: number | undefined;
}

export interface PreheatStart {
  /** The reference as the client wrote it (for status and logs). */
  imageText: string;
  image: ImageReference;
  /** Undefined: every platform of an index. */
  platforms: readonly Platform[] | undefined;
}

interface BlobEntry {
  readonly digest: Digest;
  readonly sizeBytes: number;
  state: PreheatBlobState;
  error?: string;
}

interface Job {
  readonly id: string;
  readonly image: string;
  readonly platforms: readonly string[];
  readonly blobs: readonly BlobEntry[];
  readonly startedAtMs: number;
  readonly abort: AbortController;
  state: PreheatJobState;
  finishedAtMs?: number;
  message?: string;
}

interface Resolved {
  platforms: string[];
  blobs: Array<{ digest: Digest; sizeBytes: number }>;
}

/**
 * Preheat jobs: resolve an image to its blobs (for an index, those of the
 * chosen platforms), then warm the supernode's cache with each of them through
 * BlobTasks, a few at a time. Jobs live in memory only; at most `maxJobs` are
 * remembered, the oldest finished ones forgotten first.
 */
export class PreheatJobs {
  private readonly log: Logger;
  private readonly store: PieceStoreApi;
  private readonly registry: RegistryClientApi;
  private readonly tasks: BlobTasks;
  private readonly clock: Clock;
  private readonly maxJobs: number;
  private readonly blobConcurrency: number;
  /** In start order, bounded by maxJobs. */
  private readonly jobs = new Map<string, Job>();

  constructor(components: PreheatComponents, init: PreheatInit = {}) {
    this.log = components.log.child({ module: 'preheat' });
    this.store = components.store;
    this.registry = components.registry;
    this.tasks = components.tasks;
    this.clock = components.clock ?? systemClock;
    this.maxJobs = Math.max(1, init.maxJobs ?? DEFAULT_MAX_PREHEAT_JOBS);
    this.blobConcurrency = Math.max(1, init.blobConcurrency ?? DEFAULT_PREHEAT_BLOB_CONCURRENCY);
  }

  /**
   * Resolves the image (errors such as an unknown tag or platform reject here,
   * before any job exists), then starts warming its blobs and returns the job.
   * `authorization` is the client's registry credential, used for every
   * registry request of the job and never logged.
   */
  async start(request: PreheatStart, authorization: string | undefined, options: { signal?: AbortSignal } = {}): Promise<PreheatJob> {
    const resolved = await this.resolve(request, authorization, options.signal);
    this.makeRoom();
    const job: Job = {
      id: randomUUID(),
      image: request.imageText,
      platforms: resolved.platforms,
      blobs: resolved.blobs.map((b) => ({ digest: b.digest, sizeBytes: b.sizeBytes, state: 'pending' })),
      startedAtMs: this.clock.now(),
      abort: new AbortController(),
      state: 'running',
    };
    this.jobs.set(job.id, job);
    const log = this.log.child({ job: job.id, image: job.image });
    log.info({ platforms: job.platforms, blobs: job.blobs.length, bytesTotal: sumBytes(job.blobs) }, 'preheat started');
    this.run(job, request.image, authorization, log).catch((err: unknown) => {
      job.state = 'failed';
      job.message = `preheat stopped: ${err instanceof Error ? err.message : String(err)}`;
      log.error({ err }, 'preheat job stopped');
    });
    return this.status(job);
  }

  get(id: string): PreheatJob {
    const job = this.jobs.get(id);
    if (job === undefined) throw new PreheatJobUnknownError(id);
    return this.status(job);
  }

  /** Jobs remembered now (running and finished). */
  get size(): number {
    return this.jobs.size;
  }

  /** Stops waiting on every running job (shutdown); the downloads themselves belong to BlobTasks. */
  close(): void {
    for (const job of this.jobs.values()) job.abort.abort(new Error('supernode shutting down'));
  }

  private makeRoom(): void {
    if (this.jobs.size < this.maxJobs) return;
    for (const [id, job] of this.jobs) {
      if (job.state !== 'running') this.jobs.delete(id);
      if (this.jobs.size < this.maxJobs) return;
    }
    throw new PreheatBusyError(this.jobs.size);
  }

  private async resolve(request: PreheatStart, authorization: string | undefined, signal: AbortSignal | undefined): Promise<Resolved> {
    const { image } = request;
    const timeout = AbortSignal.timeout(PREHEAT_RESOLVE_TIMEOUT_MS);
    const combined = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
    const top = await this.fetchManifest(image, image.digest ?? image.tag ?? 'latest', image.digest, MANIFEST_ACCEPT, authorization, combined);
    const manifests: Array<{ platform: string | undefined; config: Descriptor; layers: Descriptor[] }> = [];
    if (top.kind === 'manifest') {
      manifests.push({ platform: undefined, ...top });
    } else {
      const chosen = selectManifests(top.manifests, request.platforms, request.imageText);
      if (chosen.length > MAX_PREHEAT_MANIFESTS) {
        throw new PreheatUnsupportedError(`${request.imageText}: ${chosen.length} manifests chosen, at most ${MAX_PREHEAT_MANIFESTS} per job (name platforms with --platform)`);
      }
      for (const d of chosen) {
        const child = await this.fetchManifest(image, d.digest, d.digest, d.mediaType ?? MANIFEST_ACCEPT, authorization, combined);
        if (child.kind !== 'manifest') throw new PreheatUnsupportedError(`${request.imageText}: ${d.digest} is an index inside an index, which preheat does not walk`);
        manifests.push({ platform: d.platform === undefined ? undefined : platformText(d.platform), ...child });
      }
    }
    const blobs = new Map<Digest, number>();
    for (const m of manifests) for (const d of [m.config, ...m.layers]) blobs.set(d.digest, d.sizeBytes);
    if (blobs.size > MAX_PREHEAT_BLOBS) throw new PreheatUnsupportedError(`${request.imageText}: ${blobs.size} blobs, at most ${MAX_PREHEAT_BLOBS} per job`);
    return {
      platforms: [...new Set(manifests.flatMap((m) => (m.platform === undefined ? [] : [m.platform])))],
      blobs: [...blobs].map(([digest, sizeBytes]) => ({ digest, sizeBytes })),
    };
  }

  /** GET one manifest or index, bounded, checked against its digest when it was asked for by digest. */
  private async fetchManifest(
    image: ImageReference,
    reference: string,
    digest: Digest | undefined,
    accept: string,
    authorization: string | undefined,
    signal: AbortSignal,
  ): Promise<ParsedManifest> {
    const where = `${image.registryName}/${image.repository}${digest === undefined ? `:${reference}` : `@${reference}`}`;
    const response = await this.registry.request({
      registry: image.registry,
      path: `/v2/${image.repository}/manifests/${reference}`,
      method: 'GET',
      headers: { accept },
      authorization,
      signal,
    });
    const status = response.statusCode;
    if (status !== 200) {
      destroyQuietly(response.body);
      if (status === 404) throw new ManifestUnknownError(where);
      if (status === 401 || status === 403) throw new UpstreamDeniedError(status, `manifest ${where}${authorization === undefined ? ' (no registry credentials were given)' : ''}`);
      throw new UpstreamError(`registry answered ${status} for manifest ${where}`, 502, status);
    }
    const declared = Number(response.headers['content-length']);
    if (Number.isFinite(declared) && declared > MAX_MANIFEST_BYTES) {
      destroyQuietly(response.body);
      throw new PreheatUnsupportedError(`${where}: manifest of ${declared} bytes, larger than ${MAX_MANIFEST_BYTES}`);
    }
    const body = await readBounded(response.body, MAX_MANIFEST_BYTES, () => new PreheatUnsupportedError(`${where}: manifest larger than ${MAX_MANIFEST_BYTES} bytes`));
    if (digest !== undefined && digestOf(body) !== digest) throw new DigestMismatchError(`${where}: the registry sent a manifest whose digest is ${digestOf(body)}`);
    return parseManifest(body, response.headers['content-type'], where);
  }

  private async run(job: Job, image: ImageReference, authorization: string | undefined, log: Logger): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < job.blobs.length) {
        const blob = job.blobs[next++] as BlobEntry;
        await this.warm(job, blob, image, authorization, log);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.blobConcurrency, job.blobs.length) }, worker));
    const failed = job.blobs.filter((b) => b.state === 'failed').length;
    job.state = failed === 0 ? 'done' : 'failed';
    job.finishedAtMs = this.clock.now();
    job.message = failed === 0 ? `${job.blobs.length} blobs in the supernode's cache` : `${failed} of ${job.blobs.length} blobs failed`;
    const durationMs = job.finishedAtMs - job.startedAtMs;
    if (failed === 0) log.info({ blobs: job.blobs.length, bytes: sumBytes(job.blobs), durationMs }, 'preheat done');
    else log.warn({ blobs: job.blobs.length, failed, durationMs }, 'preheat failed');
  }

  /** One blob: start (or join) its back-to-source download, then wait until the cache holds it whole and verified. */
  private async warm(job: Job, blob: BlobEntry, image: ImageReference, authorization: string | undefined, log: Logger): Promise<void> {
    const { signal } = job.abort;
    if (signal.aborted) {
      fail(blob, signal.reason);
      return;
    }
    blob.state = 'running';
    try {
      const info = await this.tasks.ensure({ digest: blob.digest, registry: image.registry, repository: image.repository, sizeBytes: blob.sizeBytes }, authorization);
      if (!info.complete) await this.store.waitForComplete(blob.digest, { signal });
      blob.state = 'done';
    } catch (err) {
      fail(blob, signal.aborted ? signal.reason : err);
      log.warn({ digest: blob.digest, err: blob.error }, 'preheat of a blob failed');
    }
  }

  private status(job: Job): PreheatJob {
    let bytesDone = 0;
    for (const b of job.blobs) bytesDone += this.bytesDone(b);
    const out: PreheatJob = {
      id: job.id,
      image: job.image,
      platforms: [...job.platforms],
      state: job.state,
      blobs: job.blobs.map((b) => (b.error === undefined ? { digest: b.digest, sizeBytes: b.sizeBytes, state: b.state } : { digest: b.digest, sizeBytes: b.sizeBytes, state: b.state, error: b.error })),
      bytesDone,
      bytesTotal: sumBytes(job.blobs),
      startedAt: new Date(job.startedAtMs).toISOString(),
    };
    if (job.finishedAtMs !== undefined) out.finishedAt = new Date(job.finishedAtMs).toISOString();
    if (job.message !== undefined) out.message = job.message;
    return out;
  }

  /** Verified bytes of a blob in the cache: whole once done, verified pieces while it streams in. */
  private bytesDone(blob: BlobEntry): number {
    if (blob.state === 'done') return blob.sizeBytes;
    if (blob.state !== 'running') return 0;
    const record = this.store.get(blob.digest);
    if (record === undefined) return 0;
    if (record.complete) return blob.sizeBytes;
    return Math.min(blob.sizeBytes, record.verifiedCount * record.layout.pieceSizeBytes);
  }
}

function fail(blob: BlobEntry, err: unknown): void {
  blob.state = 'failed';
  blob.error = (err instanceof Error ? err.message : String(err)).slice(0, 2000);
}

function sumBytes(blobs: readonly BlobEntry[]): number {
  return blobs.reduce((sum, b) => sum + b.sizeBytes, 0);
}
