/**
 * The part of bittorrent-dht 11 that Shoal uses. The package ships no types
 * (and @types/bittorrent-dht describes an older release), so this declares only
 * what `dht-discovery.ts` calls, checked against node_modules/bittorrent-dht/client.js.
 */
declare module 'bittorrent-dht' {
  import { EventEmitter } from 'node:events';

  export interface DhtNodeAddress {
    host: string;
    port: number;
  }

  export interface DhtOptions {
    /**
     * Nodes contacted to join the DHT. `false` (or `[]`) contacts nobody; leaving
     * it out means the public BitTorrent routers (k-rpc `BOOTSTRAP_NODES`).
     */
    bootstrap: false | DhtNodeAddress[];
    /** Lifetime of peers announced to this node, in ms (record-cache: kept 2/3..4/3 of it). 0 = forever. */
    maxAge?: number;
    /** Announced peers this node stores, over all info hashes. @default 10000 */
    maxPeers?: number;
    /** BEP44 values this node stores. @default 1000 (0 also means 1000) */
    maxValues?: number;
    /** Cached lookup tables (kept 5 minutes, for announce tokens). @default 1000 */
    maxTables?: number;
    /** UDP queries in flight at once. @default 16 */
    concurrency?: number;
    /** Per-query timeout in ms (k-rpc-socket). @default 2000 */
    timeout?: number;
  }

  export default class DHT extends EventEmitter {
    constructor(options: DhtOptions);
    readonly nodeId: Buffer;
    readonly listening: boolean;
    readonly destroyed: boolean;
    readonly ready?: boolean;
    listen(port: number, host: string): void;
    address(): { address: string; family: string; port: number };
    /** Recursive get_peers; peers arrive as `peer` events. Returns a function that stops further `peer` events. */
    lookup(infoHash: Buffer, callback?: (err: Error | null, nodesWithPeers?: number) => void): () => void;
    /** announce_peer to the nodes of the last lookup of `infoHash` (looks it up first if none is cached). */
    announce(infoHash: Buffer, port: number, callback?: (err: Error | null) => void): void;
    toJSON(): { nodes: DhtNodeAddress[]; values: Record<string, unknown> };
    destroy(callback?: () => void): void;

    on(event: 'peer', listener: (peer: DhtNodeAddress, infoHash: Buffer, from: { host?: string; address?: string; port: number } | null) => void): this;
    on(event: 'ready' | 'listening' | 'close', listener: () => void): this;
    on(event: 'error' | 'warning', listener: (err: Error) => void): this;
    once(event: 'ready' | 'listening' | 'close', listener: () => void): this;
    once(event: 'error', listener: (err: Error) => void): this;
    off(event: 'ready' | 'listening' | 'close', listener: () => void): this;
    off(event: 'error' | 'warning', listener: (err: Error) => void): this;
  }
}
