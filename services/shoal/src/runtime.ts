import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { EVENT_LOOP_MONITORING_PRECISION_MS, splitHostPort, type Logger } from '@shoal/core';
import { PieceStore, type PieceStoreInit } from '@shoal/store';
import { RegistryClient } from '@shoal/registry-client';
import { buildSupernodeApp, kubeClientFrom, type ImagePullJobControllerInit } from '@shoal/supernode';
import { buildPeerApp, DhtDiscovery, Peer, PieceClient, Prefetcher, RateLimiter, SupernodeClient, SupernodeSession } from '@shoal/peer';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { buildProxyApp, HttpBlobProvider } from '@shoal/proxy';
import type { BlobProvider } from '@shoal/core';

/** Cache limits, passed to the piece store as they are (see PieceStoreInit). */
export type CacheOptions = Pick<PieceStoreInit, 'quotaBytes' | 'highWatermark' | 'lowWatermark' | 'verifyOnOpen'>;

function cacheInit(dir: string, options: CacheOptions): PieceStoreInit {
  return { dir, quotaBytes: options.quotaBytes, highWatermark: options.highWatermark, lowWatermark: options.lowWatermark, verifyOnOpen: options.verifyOnOpen };
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

export interface SupernodeOptions extends CacheOptions {
  listen: string;
  dataDir: string;
  plainHttpHosts: readonly string[];
  token: string | undefined;
  /** Run the ImagePullJob controller (`--image-pull-jobs`): kubeconfig file (default: in-cluster), one namespace (default: all). */
  imagePullJobs?: { kubeconfig?: string | undefined; namespace?: string | undefined; init?: ImagePullJobControllerInit } | undefined;
}

export async function startSupernode(log: Logger, options: SupernodeOptions): Promise<Running> {
  await mkdir(options.dataDir, { recursive: true });
  const store = await PieceStore.open({ log }, cacheInit(options.dataDir, options));
  const registry = new RegistryClient({ log }, { plainHttpHosts: options.plainHttpHosts });
  const pullJobs = options.imagePullJobs;
  let imagePullJobs;
  try {
    imagePullJobs = pullJobs === undefined ? undefined : { kube: await kubeClientFrom(pullJobs), init: pullJobs.init };
  } catch (err) {
    await registry.close();
    await store.close();
    throw err;
  }
  const { app } = await buildSupernodeApp({ log, store, registry }, { token: options.token, imagePullJobs });
  const { host, port } = splitHostPort(options.listen);
  const address = await app.listen({ host, port });
  const url = listenUrl(address, options.listen);
  log.info({ url, dataDir: options.dataDir }, 'supernode listening');
  return {
    url,
    async close() {
      await app.close();
      await registry.close();
      await store.close();
    },
  };
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

export interface PeerOptions extends CacheOptions {
  supernodeUrls: readonly string[];
  peerListen: string;
  advertise: string | undefined;
  dataDir: string;
  token: string | undefined;
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
}

export interface RunningPeer extends Running {
  peer: Peer;
  peerId: string;
  /** Where this node's DHT listens (UDP), when it runs one. */
  dhtAddress: { host: string; port: number } | undefined;
}

export async function startPeer(log: Logger, options: PeerOptions): Promise<RunningPeer> {
  await mkdir(options.dataDir, { recursive: true });
  const peerId = await loadPeerId(options.dataDir);
  const store = await PieceStore.open({ log }, cacheInit(join(options.dataDir, 'store'), options));
  const supernodes = new SupernodeClient({ log }, { supernodeUrls: options.supernodeUrls, token: options.token });
  const pieces = new PieceClient({ token: options.token });
  const registry = new RegistryClient({ log }, { plainHttpHosts: options.plainHttpHosts ?? [] });
  const metrics = new Registry();
  collectDefaultMetrics({ register: metrics, prefix: 'shoal_peer_', eventLoopMonitoringPrecision: EVENT_LOOP_MONITORING_PRECISION_MS });
  new Gauge({ name: 'shoal_peer_cache_bytes', help: "Bytes held by this node's cache (complete and partial blobs)", registers: [metrics], collect() { this.set(store.usage().bytes); } });
  new Gauge({ name: 'shoal_peer_cache_blobs', help: "Blobs held by this node's cache", registers: [metrics], collect() { this.set(store.usage().blobs); } });
  const pieceBytes = new Counter({ name: 'shoal_peer_piece_bytes_total', help: 'Verified piece bytes this node downloaded, by origin', labelNames: ['from'], registers: [metrics] });
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
  const app = await buildPeerApp({ log, store, peer: lazyPeer, metrics, uploadLimiter: limiter(options.uploadBytesPerSec) }, { token: options.token, maxUploads: options.maxUploads });
  const address = await app.listen({ host, port });
  const boundPort = Number(new URL(address).port);
  const advertiseUrl = options.advertise ?? defaultAdvertiseUrl(options.peerListen, boundPort);
  let discovery: DhtDiscovery | undefined;
  if (options.dhtListen !== undefined) {
    discovery = await DhtDiscovery.start({ log }, { listen: splitHostPort(options.dhtListen), bootstrap: [...(options.dhtBootstrap ?? [])], peerPort: boundPort });
    const dht = discovery;
    for (const blob of store.list()) if (blob.complete) dht.announce(blob.digest);
    store.on('complete', (digest) => dht.announce(digest));
    store.on('discarded', (digest) => dht.withdraw(digest));
  }
  const peer = new Peer(
    { log, store, supernodes, pieces, registry, discovery, downloadLimiter: limiter(options.downloadBytesPerSec), onPieceBytes: (from, bytes) => pieceBytes.inc({ from }, bytes) },
    { peerId, advertiseUrl, zone: options.zone },
  );
  late = peer;
  const prefetcher = new Prefetcher({ log, target: peer });
  const session = new SupernodeSession(
    { log },
    {
      supernodeUrls: options.supernodeUrls,
      token: options.token,
      peerId,
      advertiseUrl,
      zone: options.zone,
      nodeName: options.nodeName,
      onPrefetch: (message, reply) => prefetcher.handle(message, reply),
      inventory: () => store.list().filter((b) => b.complete).map((b) => ({ digest: b.digest, pieceCount: store.get(b.digest)?.layout.pieceCount ?? 0 })),
    },
  );
  // Evicted or given up: children asking for its pieces would only meet a 404.
  store.on('discarded', (digest) => session.send({ type: 'drop', digest }));
  session.start();
  log.info({ peerId, nodeName: options.nodeName, url: listenUrl(address, options.peerListen), advertiseUrl, supernodes: options.supernodeUrls }, 'peer listening');
  return {
    url: listenUrl(address, options.peerListen),
    peer,
    peerId,
    dhtAddress: discovery?.address,
    async close() {
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
}

export async function startProxy(log: Logger, options: ProxyOptions): Promise<Running> {
  const registry = new RegistryClient({ log }, { plainHttpHosts: options.plainHttpHosts });
  const app = await buildProxyApp(
    { log, registry, blobs: options.blobs },
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

/** `shoal node`: a peer and a proxy in one process; the proxy calls the peer directly. */
export async function startNodeAgent(log: Logger, options: NodeAgentOptions): Promise<RunningNodeAgent> {
  const peer = await startPeer(log, { ...options, plainHttpHosts: options.plainHttpHosts });
  let proxy: Running;
  try {
    proxy = await startProxy(log, { proxyListen: options.proxyListen, plainHttpHosts: options.plainHttpHosts, blobs: peer.peer, staleIfErrorMs: options.staleIfErrorMs, grantMemoryMs: options.grantMemoryMs, firstByteTimeoutMs: options.firstByteTimeoutMs });
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

/** `shoal proxy` apart from its peer: blobs come over HTTP from the peer process. */
export function httpBlobProvider(log: Logger, peerUrl: string, token: string | undefined): BlobProvider {
  return new HttpBlobProvider({ log }, { peerUrl, token });
}
