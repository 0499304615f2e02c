import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { ClusterAuth, ConfigError, parseAdvertiseUrl, splitHostPort, type Logger } from '@shoal/core';
import { counter, gauge, processMetricsRegistry, watchTokenFile } from '@shoal/service-kit';
import { DEFAULT_FRESH_PIECE_BYTES, PieceStore, type PieceStoreInit } from '@shoal/store';
import { RegistryClient } from '@shoal/registry-client';
import { buildSupernodeApp, kubeClientFrom, type ImagePullJobControllerInit, type LeaderElectionInit } from '@shoal/supernode';
import { buildPeerApp, createPeerMetrics, DhtDiscovery, Peer, PeerAudience, PieceAnnouncer, PieceClient, Prefetcher, RateLimiter, RuntimePuller, SupernodeClient, SupernodeSession } from '@shoal/peer';
import type { Registry } from 'prom-client';
import { buildProxyApp, HttpBlobProvider } from '@shoal/proxy';
import type { BlobProvider } from '@shoal/core';

/** Cache limits, passed to the piece store as they are (see PieceStoreInit). */
export type CacheOptions = Pick<PieceStoreInit, 'quotaBytes' | 'highWatermark' | 'lowWatermark' | 'verifyOnOpen'>;

function cacheInit(dir: string, options: CacheOptions): PieceStoreInit {
  return {
    dir,
    quotaBytes: options.quotaBytes,
    highWatermark: options.highWatermark,
    lowWatermark: options.lowWatermark,
    verifyOnOpen: options.verifyOnOpen,
    freshPieceBytes: DEFAULT_FRESH_PIECE_BYTES,
  };
}

/**
 * A cache's quota and evictions (its bytes and blobs are the services' own
 * gauges). An eviction is a blob discarded to make room (quota or a full disk).
 */
function cacheMetrics(registry: Registry, prefix: string, what: string, store: PieceStore): void {
  gauge(registry, `${prefix}cache_quota_bytes`, `Disk quota of ${what} (--cache-quota-bytes); absent when unbounded`, {
    collect() {
      const quota = store.usage().quotaBytes;
      if (quota !== undefined) this.set(quota);
    },
  });
  const evictions = counter(registry, `${prefix}cache_evictions_total`, `Blobs evicted from ${what} to make room (quota or a full disk)`);
  store.on('discarded', (_digest, reason) => {
    const cause = reason instanceof Error ? reason.cause : undefined;
    if (cause instanceof Error && cause.message.startsWith('evicted')) evictions.inc();
  });
}

/** A running service: where it listens and how to stop it. */
export interface Running {
  url: string;
  close(): Promise<void>;
}

function listenUrl(address: string, listen: string): string {
  const { host } = splitHostPort(listen);
  // A wildcard bind is reached on loopback from this machine.
  const port = new URL(address).port;
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `http://${shown}:${port}`;
}

/** How a service authenticates: the cluster tokens, and the file they are re-read from for rotations. */
export interface AuthOptions {
  /** The cluster token, which signs (the token file's first line); undefined runs the cluster open. */
  token: string | undefined;
  /** More tokens accepted, never signing (the token file's later lines). @default [] */
  acceptedTokens?: readonly string[] | undefined;
  /** The tokens' file, read again every TOKEN_FILE_POLL_MS: its list is handed to ClusterAuth.setTokens (a new first token signs after the grace). */
  tokenFile?: string | undefined;
  /** @default DEFAULT_TOKEN_GRACE_MS */
  tokenGraceMs?: number | undefined;
  /** How often the token file is read. @default TOKEN_FILE_POLL_MS */
  tokenPollMs?: number | undefined;
}

/** The cluster's keys for one process, and the token-file watch that rotates them. */
function clusterAuth(log: Logger, options: AuthOptions): { auth: ClusterAuth; close(): void } {
  const auth = new ClusterAuth({}, { token: options.token, acceptedTokens: options.acceptedTokens, graceMs: options.tokenGraceMs });
  if (options.token === undefined || options.tokenFile === undefined) return { auth, close: () => undefined };
  const watch = watchTokenFile({ log }, auth, { path: options.tokenFile, intervalMs: options.tokenPollMs });
  return { auth, close: () => watch.close() };
}

export interface SupernodeOptions extends CacheOptions, AuthOptions {
  listen: string;
  dataDir: string;
  plainHttpHosts: readonly string[];
  /** Back-to-source fetches from one registry at once (`--max-fetches-per-registry`); undefined: the supernode's default. */
  maxFetchesPerRegistry?: number | undefined;
  /** A blob's swarm of up to this many nodes is scheduled as a chain (`--chain-members`, experimental); undefined or 0: never. */
  chainMembers?: number | undefined;
  /** Run the ImagePullJob controller (`--image-pull-jobs`): kubeconfig file (default: in-cluster), one namespace (default: all). */
  imagePullJobs?:
    | {
        kubeconfig?: string | undefined;
        namespace?: string | undefined;
        init?: ImagePullJobControllerInit;
        /** Where the leader Lease lives (default: the pod's namespace, else `namespace`, else `default`). */
        leaderElectionNamespace?: string | undefined;
        /** Leader election timing (tests shorten it). */
        leaderElection?: Omit<LeaderElectionInit, 'namespace' | 'identity'> | undefined;
      }
    | undefined;
}

/** The pod's own namespace, as the service account mounts it. */
const POD_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

async function leaseNamespace(explicit: string | undefined, watched: string | undefined): Promise<string> {
  if (explicit !== undefined) return explicit;
  try {
    const ns = (await readFile(POD_NAMESPACE_FILE, 'utf8')).trim();
    if (ns !== '') return ns;
  } catch {
    // not in a pod
  }
  return watched ?? 'default';
}

export async function startSupernode(log: Logger, options: SupernodeOptions): Promise<Running> {
  await mkdir(options.dataDir, { recursive: true });
  const store = await PieceStore.open({ log }, cacheInit(options.dataDir, options));
  const registry = new RegistryClient({ log }, { plainHttpHosts: options.plainHttpHosts });
  const pullJobs = options.imagePullJobs;
  let imagePullJobs;
  try {
    imagePullJobs =
      pullJobs === undefined
        ? undefined
        : {
            kube: await kubeClientFrom(pullJobs),
            init: pullJobs.init,
            leaderElection: {
              ...pullJobs.leaderElection,
              namespace: await leaseNamespace(pullJobs.leaderElectionNamespace, pullJobs.namespace),
              identity: `${hostname()}-${randomBytes(4).toString('hex')}`,
            },
          };
  } catch (err) {
    await registry.close();
    await store.close();
    throw err;
  }
  const keys = clusterAuth(log, options);
  const { app } = await buildSupernodeApp({ log, store, registry }, {
    auth: keys.auth,
    imagePullJobs,
    maxFetchesPerRegistry: options.maxFetchesPerRegistry,
    ...(options.chainMembers === undefined ? {} : { scheduler: { chainMembers: options.chainMembers } }),
  });
  cacheMetrics(app.metrics, 'shoal_supernode_', "the supernode's cache", store);
  const { host, port } = splitHostPort(options.listen);
  let address: string;
  try {
    address = await app.listen({ host, port });
  } catch (err) {
    keys.close();
    await app.close();
    await registry.close();
    await store.close();
    throw err;
  }
  const url = listenUrl(address, options.listen);
  log.info({ url, dataDir: options.dataDir }, 'supernode listening');
  return {
    url,
    async close() {
      keys.close();
      await app.close();
      await registry.close();
      await store.close();
    },
  };
}

/**
 * This peer's own secret, kept in its data dir (mode 0600): it proves to a
 * supernode that a re-registration of this peer id (a reconnect, a restart) is
 * this peer, so nobody else can take the id over while it is live.
 */
async function loadPeerSecret(dataDir: string): Promise<string> {
  const file = join(dataDir, 'peer-secret');
  try {
    const secret = (await readFile(file, 'utf8')).trim();
    if (/^[A-Za-z0-9_-]{43,128}$/.test(secret)) return secret;
  } catch {
    // first start
  }
  const secret = randomBytes(32).toString('base64url');
  await writeFile(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}

/** A stable identity for this node's peer, kept in its data dir. */
async function loadPeerId(dataDir: string): Promise<string> {
  const file = join(dataDir, 'peer-id');
  try {
    const id = (await readFile(file, 'utf8')).trim();
    if (/^[A-Za-z0-9._-]{1,64}$/.test(id)) return id;
  } catch {
    // first start
  }
  const base = hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 40);
  const id = `${base}-${randomBytes(4).toString('hex')}`;
  await writeFile(file, `${id}\n`);
  return id;
}

/** The URL other peers use to reach this one when --advertise is not given. */
export function defaultAdvertiseUrl(peerListen: string, boundPort: number): string {
  const { host } = splitHostPort(peerListen);
  if (host !== '0.0.0.0' && host !== '::') return `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) {
      if (a.family === 'IPv4' && !a.internal) return `http://${a.address}:${boundPort}`;
    }
  }
  return `http://127.0.0.1:${boundPort}`;
}

export interface PeerOptions extends CacheOptions, AuthOptions {
  supernodeUrls: readonly string[];
  peerListen: string;
  advertise: string | undefined;
  dataDir: string;
  /** Registries reached over plain HTTP (the peer's own back-to-source when no supernode answers). */
  plainHttpHosts?: readonly string[];
  zone?: string | undefined;
  /** The Kubernetes node name the peer registers with (preheat --nodes selects by it); undefined sends none. */
  nodeName?: string | undefined;
  /** Pieces served at once at most. */
  maxUploads?: number | undefined;
  /** 0 = unlimited. */
  uploadBytesPerSec?: number | undefined;
  /** 0 = unlimited. */
  downloadBytesPerSec?: number | undefined;
  /** UDP HOST:PORT for the DHT; undefined runs without it. */
  dhtListen?: string | undefined;
  /** Other nodes' DHT HOST:PORT. */
  dhtBootstrap?: readonly string[] | undefined;
  /** The container runtime's CRI socket prewarm pulls through (`--containerd-socket`); undefined: none (prewarm fills the store only). */
  containerdSocket?: string | undefined;
}

export interface RunningPeer extends Running {
  peer: Peer;
  /** The peer's metrics registry (a node agent's proxy registers there too, so one scrape of the peer port has both). */
  metrics: Registry;
  peerId: string;
  /** Where this node's DHT listens (UDP), when it runs one. */
  dhtAddress: { host: string; port: number } | undefined;
}

export async function startPeer(log: Logger, options: PeerOptions): Promise<RunningPeer> {
  if (options.advertise !== undefined) {
    try {
      parseAdvertiseUrl(options.advertise);
    } catch (err) {
      throw new ConfigError([`--advertise: ${(err as Error).message}`]);
    }
  }
  await mkdir(options.dataDir, { recursive: true });
  const peerId = await loadPeerId(options.dataDir);
  const peerSecret = await loadPeerSecret(options.dataDir);
  const store = await PieceStore.open({ log }, cacheInit(join(options.dataDir, 'store'), options));
  const keys = clusterAuth(log, options);
  const auth = keys.auth;
  const supernodes = new SupernodeClient({ log }, { supernodeUrls: options.supernodeUrls, auth });
  const pieces = new PieceClient({ auth });
  const registry = new RegistryClient({ log }, { plainHttpHosts: options.plainHttpHosts ?? [] });
  const metrics = processMetricsRegistry('shoal_peer_');
  gauge(metrics, 'shoal_peer_cache_bytes', "Bytes held by this node's cache (complete and partial blobs)", { collect() { this.set(store.usage().bytes); } });
  gauge(metrics, 'shoal_peer_cache_blobs', "Blobs held by this node's cache", { collect() { this.set(store.usage().blobs); } });
  cacheMetrics(metrics, 'shoal_peer_', "this node's cache", store);
  const pieceBytes = counter(metrics, 'shoal_peer_piece_bytes_total', 'Verified piece bytes this node downloaded, by origin', ['from']);
  const peerMetrics = createPeerMetrics(metrics);
  const limiter = (rate: number | undefined): RateLimiter | undefined => (rate === undefined || rate === 0 ? undefined : new RateLimiter(rate));
  // The advertised URL needs the bound port: listen first, then build the peer (routes read it lazily).
  const { host, port } = splitHostPort(options.peerListen);
  let late: Peer | undefined;
  const lazyPeer = {
    openBlob: (...args: Parameters<Peer['openBlob']>) => {
      if (late === undefined) return Promise.reject(new Error('peer starting'));
      return late.openBlob(...args);
    },
    get activeDownloads() {
      return late?.activeDownloads ?? 0;
    },
  };
  const audience = new PeerAudience();
  const app = await buildPeerApp({ log, store, peer: lazyPeer, metrics, uploadLimiter: limiter(options.uploadBytesPerSec) }, { auth, isMe: audience.isMe, peerId, maxUploads: options.maxUploads });
  const address = await app.listen({ host, port });
  const boundPort = Number(new URL(address).port);
  const advertiseUrl = parseAdvertiseUrl(options.advertise ?? defaultAdvertiseUrl(options.peerListen, boundPort));
  audience.set(advertiseUrl, boundPort);
  let discovery: DhtDiscovery | undefined;
  if (options.dhtListen !== undefined) {
    discovery = await DhtDiscovery.start({ log }, { listen: splitHostPort(options.dhtListen), bootstrap: [...(options.dhtBootstrap ?? [])], peerPort: boundPort });
    const dht = discovery;
    for (const blob of store.list()) if (blob.complete) dht.announce(blob.digest);
    store.on('complete', (digest) => dht.announce(digest));
    store.on('discarded', (digest) => dht.withdraw(digest));
  }
  const peer = new Peer(
    { log, store, supernodes, pieces, registry, discovery, downloadLimiter: limiter(options.downloadBytesPerSec), onPieceBytes: (from, bytes) => pieceBytes.inc({ from }, bytes), metrics: peerMetrics },
    { peerId, advertiseUrl, zone: options.zone },
  );
  late = peer;
  const runtime = options.containerdSocket === undefined ? undefined : new RuntimePuller({ log }, { socketPath: options.containerdSocket });
  const prefetcher = new Prefetcher({
    log,
    runtime,
    target: {
      prefetch: (blob, o) => peer.prefetch(blob, o),
      storedBytes: (digest) => {
        const record = store.get(digest as Parameters<typeof store.get>[0]);
        if (record === undefined) return 0;
        return record.complete ? record.layout.blobSizeBytes : Math.min(record.layout.blobSizeBytes, record.verifiedCount * record.layout.pieceSizeBytes);
      },
    },
  });
  const session = new SupernodeSession(
    { log },
    {
      supernodeUrls: options.supernodeUrls,
      auth,
      peerId,
      peerSecret,
      advertiseUrl,
      zone: options.zone,
      nodeName: options.nodeName,
      onPrefetch: (message, reply, progress) => prefetcher.handle(message, reply, progress),
      onRuntimePull: (message, reply) => prefetcher.handleRuntimePull(message, reply),
      inventory: () => store.list().filter((b) => b.complete).map((b) => ({ digest: b.digest, pieceCount: store.get(b.digest)?.layout.pieceCount ?? 0 })),
    },
  );
  gauge(metrics, 'shoal_peer_supernodes_registered', 'Supernodes that have this peer registered over an open WebSocket (0: the node is not in the swarm)', {
    collect() {
      this.set(session.registeredCount);
    },
  });
  gauge(metrics, 'shoal_peer_supernodes_configured', 'Supernode URLs this peer was given (--supernode)', {
    collect() {
      this.set(options.supernodeUrls.length);
    },
  });
  // Evicted or given up: children asking for its pieces would only meet a 404.
  store.on('discarded', (digest) => session.send({ type: 'drop', digest }));
  // Every verified piece is announced at once, so others may fetch it from here:
  // the download's next schedule call may be held for a while (a long-poll). A piece
  // is passed on from its first bytes (routes/blobs.ts), and announced as arriving.
  const announcer = new PieceAnnouncer((message) => session.send(message));
  store.on('piece', (digest, index) => announcer.verified(digest, index));
  store.on('arriving', (digest, index) => announcer.arriving(digest, index));
  store.on('arrivalFailed', (digest, index) => announcer.failed(digest, index));
  session.start();
  log.info({ peerId, nodeName: options.nodeName, containerdSocket: options.containerdSocket, url: listenUrl(address, options.peerListen), advertiseUrl, supernodes: options.supernodeUrls }, 'peer listening');
  return {
    url: listenUrl(address, options.peerListen),
    peer,
    metrics,
    peerId,
    dhtAddress: discovery?.address,
    async close() {
      keys.close();
      announcer.close();
      session.close();
      prefetcher.close();
      await discovery?.close();
      peer.close();
      await app.close();
      await supernodes.close();
      await pieces.close();
      await registry.close();
      await store.close();
    },
  };
}

export interface ProxyOptions {
  proxyListen: string;
  plainHttpHosts: readonly string[];
  blobs: BlobProvider;
  /** Serve a tag's last known answer this long while the registry is down (0: never). */
  staleIfErrorMs?: number | undefined;
  /** Remember a credential's blob grants this long, to serve from the swarm while the registry is down (0: never). */
  grantMemoryMs?: number | undefined;
  /** How long the swarm may take to produce a blob's first byte before the proxy goes to the registry. */
  firstByteTimeoutMs?: number | undefined;
  /** Register the proxy's metrics here (a node agent: the peer's registry). @default a registry of its own */
  metrics?: Registry | undefined;
}

export async function startProxy(log: Logger, options: ProxyOptions): Promise<Running> {
  const registry = new RegistryClient({ log }, { plainHttpHosts: options.plainHttpHosts });
  const app = await buildProxyApp(
    { log, registry, blobs: options.blobs, metrics: options.metrics },
    {
      ...(options.staleIfErrorMs === undefined ? {} : { staleIfErrorMs: options.staleIfErrorMs }),
      ...(options.grantMemoryMs === undefined ? {} : { grantMemoryMs: options.grantMemoryMs }),
      ...(options.firstByteTimeoutMs === undefined ? {} : { firstByteTimeoutMs: options.firstByteTimeoutMs }),
    },
  );
  const { host, port } = splitHostPort(options.proxyListen);
  const address = await app.listen({ host, port });
  const url = listenUrl(address, options.proxyListen);
  log.info({ url }, 'proxy listening (containerd mirror)');
  return {
    url,
    async close() {
      await app.close();
      await registry.close();
    },
  };
}

export interface NodeAgentOptions extends PeerOptions {
  proxyListen: string;
  plainHttpHosts: readonly string[];
  staleIfErrorMs?: number | undefined;
  grantMemoryMs?: number | undefined;
  firstByteTimeoutMs?: number | undefined;
}

export interface RunningNodeAgent {
  proxyUrl: string;
  peerUrl: string;
  peerId: string;
  dhtAddress: { host: string; port: number } | undefined;
  close(): Promise<void>;
}

/**
 * `shoal node`: a peer and a proxy in one process; the proxy calls the peer directly.
 * The proxy registers its metrics with the peer's registry, so the peer port's
 * `/metrics` (the one Prometheus can reach: the proxy listens on loopback) shows both.
 */
export async function startNodeAgent(log: Logger, options: NodeAgentOptions): Promise<RunningNodeAgent> {
  const peer = await startPeer(log, { ...options, plainHttpHosts: options.plainHttpHosts });
  let proxy: Running;
  try {
    proxy = await startProxy(log, { proxyListen: options.proxyListen, plainHttpHosts: options.plainHttpHosts, blobs: peer.peer, staleIfErrorMs: options.staleIfErrorMs, grantMemoryMs: options.grantMemoryMs, firstByteTimeoutMs: options.firstByteTimeoutMs, metrics: peer.metrics });
  } catch (err) {
    await peer.close();
    throw err;
  }
  return {
    proxyUrl: proxy.url,
    peerUrl: peer.url,
    peerId: peer.peerId,
    dhtAddress: peer.dhtAddress,
    async close() {
      await proxy.close();
      await peer.close();
    },
  };
}

/**
 * `shoal proxy` apart from its peer: blobs come over HTTP from the peer process,
 * in requests signed for it (the token file is followed for rotations for as
 * long as the process runs).
 */
export function httpBlobProvider(log: Logger, peerUrl: string, options: AuthOptions): BlobProvider {
  return new HttpBlobProvider({ log }, { peerUrl, auth: clusterAuth(log, options).auth });
}
