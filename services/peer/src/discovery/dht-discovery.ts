import { createHash } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';
import DHT from 'bittorrent-dht';
import { ConfigError, type Digest, type Logger } from '@shoal/core';

/** How often a held digest is announced again (BEP5 nodes forget peers that stop announcing). 5 minutes. */
export const DEFAULT_REANNOUNCE_INTERVAL_MS = 5 * 60_000;
/**
 * Digests this node announces at once. A node's working set of layers is a few
 * hundred; past this the digest announced longest ago is dropped (it is also the
 * one least likely to be asked for). Bounds both memory and re-announce traffic.
 */
export const MAX_ANNOUNCED_DIGESTS = 2_048;
/** Announce rounds (get_peers walk + announce_peer) in flight at once, so a re-announce sweep trickles out. */
export const ANNOUNCE_CONCURRENCY = 4;
/** Peers returned by one lookup unless the caller says otherwise. */
export const DEFAULT_LOOKUP_LIMIT = 16;
/** Hard ceiling on `limit`. */
export const MAX_LOOKUP_LIMIT = 256;
/** Time a lookup may take unless the caller says otherwise: 5 s. */
export const DEFAULT_LOOKUP_TIMEOUT_MS = 5_000;
/** Lookups in flight at once; more resolve to [] at once (the caller falls back to the registry). */
export const MAX_CONCURRENT_LOOKUPS = 128;
/** Peers (digest, address) this node stores for others, over all digests (bittorrent-dht `maxPeers`). */
export const MAX_STORED_PEERS = 10_000;

/** Peer discovery for the times no supernode answers. */
export interface PeerDiscovery {
  /** Tell the swarm this node can serve `digest` (re-announced periodically while held). */
  announce(digest: Digest): void;
  /** Stop announcing (blob evicted). */
  withdraw(digest: Digest): void;
  /** Peer base URLs (http://host:port) that announced `digest`, at most `limit`, within `timeoutMs`. Never throws: [] on failure. */
  lookup(digest: Digest, options?: LookupOptions): Promise<string[]>;
  close(): Promise<void>;
}

export interface LookupOptions {
  /** Most URLs returned. @default DEFAULT_LOOKUP_LIMIT (16), at most MAX_LOOKUP_LIMIT */
  limit?: number;
  /** The lookup stops and returns what it found by then. @default DEFAULT_LOOKUP_TIMEOUT_MS (5 s) */
  timeoutMs?: number;
  /** Aborting stops the lookup; it resolves with what it found by then. */
  signal?: AbortSignal;
}

export interface DhtDiscoveryInit {
  /** UDP address of the DHT socket. IPv4 only (BEP5 compact peer info is IPv4). Port 0 picks one. */
  listen: { host: string; port: number };
  /**
   * `host:port` of other nodes' DHT sockets. Only these are ever contacted first;
   * an empty list contacts nobody (this node waits to be contacted). It is never
   * defaulted: bittorrent-dht's default is the public BitTorrent routers.
   */
  bootstrap: readonly string[];
  /** The HTTP port this node serves pieces on: what is announced, and what lookups return. */
  peerPort: number;
  /** @default DEFAULT_REANNOUNCE_INTERVAL_MS (5 min) */
  reannounceIntervalMs?: number;
  /**
   * How long this node keeps a peer that others announced to it without hearing
   * from it again (kept between 2/3 and 4/3 of it). Three re-announce periods
   * survive two lost rounds; withdrawn blobs age out of the swarm after it.
   * @default 3 × reannounceIntervalMs
   */
  peerTtlMs?: number;
}

/**
 * The DHT key of a blob: the first 20 bytes of sha256("shoal:" + digest).
 * DHT keys are 160-bit (BEP5 info hashes), so the 256-bit digest is hashed and
 * cut; the "shoal:" namespace keeps Shoal's keys apart from BitTorrent info
 * hashes, should a Shoal DHT ever meet a BitTorrent one.
 */
export function dhtInfoHash(digest: Digest): Buffer {
  return createHash('sha256').update(`shoal:${digest}`).digest().subarray(0, 20);
}

/** A UDP address on the DHT (a node, or an announced peer's host with its piece port). */
export interface DhtAddress {
  host: string;
  port: number;
}

interface Collector {
  add(peer: DhtAddress): void;
  finish(): void;
}

/**
 * Announces and finds holders of blobs on a Kademlia DHT (BEP5, through
 * bittorrent-dht), so that peers keep finding each other with every supernode
 * down. Announcements carry the HTTP piece port; the host is the address the
 * announcing node's UDP packets came from, as BEP5 prescribes.
 *
 * Network hygiene: the DHT only ever talks to the configured bootstrap nodes and
 * to nodes those (transitively) report, never to the public BitTorrent routers.
 * BEP44 put/get is never issued; a stray incoming put can occupy at most one slot.
 */
export class DhtDiscovery implements PeerDiscovery {
  /** host:port the DHT socket is bound to (for other nodes' bootstrap lists). */
  readonly address: { host: string; port: number };
  private readonly log: Logger;
  private readonly dht: DHT;
  private readonly peerPort: number;
  private readonly ownHosts: ReadonlySet<string>;
  /** Held digests, oldest announce first (insertion order), with their DHT keys. */
  private readonly held = new Map<Digest, Buffer>();
  /** Digests waiting for an announce round, deduplicated. */
  private readonly pending = new Set<Digest>();
  private activeAnnounces = 0;
  /** Open lookups by info hash (hex). */
  private readonly lookups = new Map<string, Set<Collector>>();
  private lookupCount = 0;
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  private warnedFull = false;

  private constructor(log: Logger, dht: DHT, init: DhtDiscoveryInit, reannounceIntervalMs: number) {
    this.log = log;
    this.dht = dht;
    this.peerPort = init.peerPort;
    const bound = dht.address();
    this.address = { host: bound.address, port: bound.port };
    this.ownHosts = localIPv4Hosts(init.listen.host);
    dht.on('peer', (peer, infoHash) => {
      const collectors = this.lookups.get(infoHash.toString('hex'));
      if (collectors === undefined) return;
      for (const collector of [...collectors]) collector.add(peer);
    });
    this.timer = setInterval(() => this.reannounceAll(), reannounceIntervalMs);
    this.timer.unref();
  }

  static async start(components: { log: Logger }, init: DhtDiscoveryInit): Promise<DhtDiscovery> {
    const log = components.log.child({ module: 'dht' });
    const reannounceIntervalMs = init.reannounceIntervalMs ?? DEFAULT_REANNOUNCE_INTERVAL_MS;
    const peerTtlMs = init.peerTtlMs ?? 3 * reannounceIntervalMs;
    const problems: string[] = [];
    if (!isIPv4(init.listen.host)) problems.push(`dht listen host ${JSON.stringify(init.listen.host)} is not an IPv4 address`);
    if (!isPort(init.listen.port, true)) problems.push(`dht listen port ${init.listen.port} is not 0..65535`);
    if (!isPort(init.peerPort, false)) problems.push(`dht peer port ${init.peerPort} is not 1..65535`);
    if (!(reannounceIntervalMs > 0)) problems.push(`dht re-announce interval ${reannounceIntervalMs} ms is not positive`);
    if (!(peerTtlMs > 0)) problems.push(`dht peer ttl ${peerTtlMs} ms is not positive`);
    const bootstrap: DhtAddress[] = [];
    for (const entry of init.bootstrap) {
      const node = parseHostPort(entry);
      if (node === undefined) problems.push(`dht bootstrap node ${JSON.stringify(entry)} is not host:port`);
      else bootstrap.push(node);
    }
    if (problems.length > 0) throw new ConfigError(problems);

    const dht = new DHT({
      // Never undefined: k-rpc would fill in router.bittorrent.com and friends.
      // `false` also skips the join walk, which with no nodes would be a no-op anyway.
      bootstrap: bootstrap.length === 0 ? false : bootstrap,
      maxAge: peerTtlMs,
      maxPeers: MAX_STORED_PEERS,
      // BEP44 is unused; 0 would mean the library's default of 1000.
      maxValues: 1,
    });
    if (bootstrap.length > 0) dht.once('ready', () => log.info({ nodes: dht.toJSON().nodes.length }, 'dht bootstrapped'));
    // Bind in this tick: the constructor's bootstrap walk runs on the next tick, and
    // a send on an unbound socket would bind it to 0.0.0.0:<random> behind our back.
    dht.listen(init.listen.port, init.listen.host);
    try {
      await new Promise<void>((resolve, reject) => {
        // k-rpc-socket reports only EACCES and EADDRINUSE as 'error'; other bind
        // failures (EADDRNOTAVAIL...) arrive as 'warning'. Before 'listening' nothing
        // else can warn (the bootstrap walk's sends wait for the bind).
        const onError = (err: Error): void => {
          dht.off('error', onError);
          dht.off('warning', onError);
          dht.off('listening', onListening);
          reject(err);
        };
        const onListening = (): void => {
          dht.off('error', onError);
          dht.off('warning', onError);
          resolve();
        };
        dht.on('error', onError);
        dht.on('warning', onError);
        dht.once('listening', onListening);
      });
    } catch (err) {
      dht.destroy();
      throw err;
    }
    // After start, socket errors are reported and the DHT keeps going; lookups just find less.
    dht.on('error', (err) => log.warn({ err: err.message }, 'dht socket error'));
    dht.on('warning', (err) => log.debug({ err: err.message }, 'dht warning'));
    const discovery = new DhtDiscovery(log, dht, init, reannounceIntervalMs);
    log.info({ address: discovery.address, bootstrap: init.bootstrap, peerPort: init.peerPort }, 'dht listening');
    return discovery;
  }

  announce(digest: Digest): void {
    if (this.closed) return;
    if (this.held.has(digest)) {
      // Move to the newest end: the oldest held digest is the one dropped when full.
      const infoHash = this.held.get(digest) as Buffer;
      this.held.delete(digest);
      this.held.set(digest, infoHash);
      return;
    }
    if (this.held.size >= MAX_ANNOUNCED_DIGESTS) {
      const oldest = this.held.keys().next().value as Digest;
      this.withdraw(oldest);
      // Once full, every new blob displaces one: say so once, then only at debug.
      if (!this.warnedFull) this.log.warn({ digest: oldest, max: MAX_ANNOUNCED_DIGESTS }, 'too many announced digests, stopped announcing the oldest');
      else this.log.debug({ digest: oldest }, 'stopped announcing the oldest digest');
      this.warnedFull = true;
    }
    this.held.set(digest, dhtInfoHash(digest));
    this.enqueue(digest);
  }

  withdraw(digest: Digest): void {
    // An announce round already walking the DHT checks `held` before it sends
    // announce_peer, so nothing is announced for `digest` after this returns.
    this.held.delete(digest);
    this.pending.delete(digest);
  }

  /** Digests currently announced (for status and tests). */
  get announcedCount(): number {
    return this.held.size;
  }

  /** The DHT nodes this node knows (its routing table). */
  knownNodes(): DhtAddress[] {
    if (this.closed) return [];
    return this.dht.toJSON().nodes.map(({ host, port }) => ({ host, port }));
  }

  lookup(digest: Digest, options: LookupOptions = {}): Promise<string[]> {
    if (this.closed || options.signal?.aborted === true) return Promise.resolve([]);
    if (this.lookupCount >= MAX_CONCURRENT_LOOKUPS) {
      this.log.warn({ digest, max: MAX_CONCURRENT_LOOKUPS }, 'too many dht lookups in flight, skipped');
      return Promise.resolve([]);
    }
    const limit = Math.min(Math.max(Math.floor(options.limit ?? DEFAULT_LOOKUP_LIMIT), 1), MAX_LOOKUP_LIMIT);
    const timeoutMs = Math.max(options.timeoutMs ?? DEFAULT_LOOKUP_TIMEOUT_MS, 0);
    const signal = options.signal;
    const infoHash = dhtInfoHash(digest);
    const key = infoHash.toString('hex');
    const found = new Set<string>();

    return new Promise<string[]>((resolve) => {
      let done = false;
      let stopQuery = (): void => {};
      const finish = (): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', finish);
        const collectors = this.lookups.get(key);
        collectors?.delete(collector);
        if (collectors?.size === 0) this.lookups.delete(key);
        this.lookupCount--;
        stopQuery();
        const urls = [...found];
        this.log.debug({ digest, peers: urls.length }, 'dht lookup done');
        resolve(urls);
      };
      const collector: Collector = {
        add: (peer) => {
          if (done || this.isSelf(peer)) return;
          found.add(`http://${peer.host}:${peer.port}`);
          if (found.size >= limit) finish();
        },
        finish,
      };
      const timer = setTimeout(finish, timeoutMs);
      signal?.addEventListener('abort', finish, { once: true });
      let collectors = this.lookups.get(key);
      if (collectors === undefined) {
        collectors = new Set();
        this.lookups.set(key, collectors);
      }
      collectors.add(collector);
      this.lookupCount++;
      try {
        // The walk ends by itself once no closer node is left (each query times out after 2 s).
        const stop = this.dht.lookup(infoHash, () => finish());
        if (done) stop();
        else stopQuery = stop;
      } catch (err) {
        this.log.warn({ digest, err: (err as Error).message }, 'dht lookup failed');
        finish();
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.held.clear();
    this.pending.clear();
    for (const collectors of [...this.lookups.values()]) {
      for (const collector of [...collectors]) collector.finish();
    }
    await new Promise<void>((resolve) => this.dht.destroy(() => resolve()));
    this.log.info('dht closed');
  }

  /** Our own announcement, as stored by others (they saw our source address, which is one of ours). */
  private isSelf(peer: DhtAddress): boolean {
    return peer.port === this.peerPort && (this.ownHosts.has(peer.host) || peer.host.startsWith('127.'));
  }

  private reannounceAll(): void {
    for (const digest of this.held.keys()) this.enqueue(digest);
  }

  private enqueue(digest: Digest): void {
    this.pending.add(digest);
    this.pump();
  }

  private pump(): void {
    while (!this.closed && this.activeAnnounces < ANNOUNCE_CONCURRENCY && this.pending.size > 0) {
      const digest = this.pending.values().next().value as Digest;
      this.pending.delete(digest);
      const infoHash = this.held.get(digest);
      if (infoHash === undefined) continue;
      this.activeAnnounces++;
      this.announceOnce(digest, infoHash).then(
        () => {
          this.activeAnnounces--;
          this.pump();
        },
        // announceOnce never rejects; kept so a bug there cannot become an unhandled rejection.
        (err: unknown) => {
          this.activeAnnounces--;
          this.log.warn({ digest, err: (err as Error).message }, 'dht announce failed');
          this.pump();
        },
      );
    }
  }

  /**
   * One round: walk towards the key collecting announce tokens (get_peers), then
   * announce_peer to the closest nodes. Done in two steps rather than with
   * `dht.announce` alone so that a withdraw during the walk is honoured.
   */
  private announceOnce(digest: Digest, infoHash: Buffer): Promise<void> {
    return new Promise<void>((resolve) => {
      // A destroyed DHT drops the callbacks of walks in flight; close() does not wait for them.
      this.dht.lookup(infoHash, () => {
        if (this.closed || this.held.get(digest) !== infoHash) {
          resolve();
          return;
        }
        this.dht.announce(infoHash, this.peerPort, (err) => {
          if (err !== null && err !== undefined) this.log.debug({ digest, err: err.message }, 'dht announce reached no node');
          else this.log.debug({ digest }, 'dht announced');
          resolve();
        });
      });
    });
  }
}

function isPort(port: number, allowZero: boolean): boolean {
  return Number.isInteger(port) && port >= (allowZero ? 0 : 1) && port <= 65_535;
}

function parseHostPort(text: string): DhtAddress | undefined {
  const match = /^([^:\s]+):(\d{1,5})$/.exec(text.trim());
  if (match === null) return undefined;
  const port = Number(match[2]);
  if (!isPort(port, false)) return undefined;
  return { host: match[1] as string, port };
}

/** Addresses under which other nodes may have seen this one: to drop its own announcements from lookups. */
function localIPv4Hosts(listenHost: string): ReadonlySet<string> {
  const hosts = new Set<string>([listenHost, '127.0.0.1']);
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) if (address.family === 'IPv4') hosts.add(address.address);
  }
  return hosts;
}
