import { WebSocket } from 'ws';
import { API_PREFIX, backoffMs, ClusterAuth, MAX_WS_FRAME_BYTES, parseFrame, SupernodeMessageSchema, type Logger, type PeerMessage, type SupernodeMessage } from '@shoal/core';

/** How often a peer tells the supernode it is alive (the supernode forgets it after 3 missed beats). */
export const HEARTBEAT_INTERVAL_MS = 10_000;
const RECONNECT_BASE_MS = 500;
const RECONNECT_MAX_MS = 30_000;

export interface SupernodeSessionInit {
  supernodeUrls: readonly string[];
  /** The cluster token; ignored when `auth` is given. */
  token?: string | undefined;
  /** The cluster's keys: the upgrade request is signed, the token never sent. */
  auth?: ClusterAuth | undefined;
  peerId: string;
  /** This peer's own secret (kept in its data dir): proves a re-registration of its live id is this peer. */
  peerSecret?: string | undefined;
  advertiseUrl: string;
  zone?: string | undefined;
  /** The Kubernetes node this peer runs on, sent with `register` (preheat into nodes selects by it). */
  nodeName?: string | undefined;
  /** A supernode asked for blobs to be filled (preheat); `reply` answers on that supernode's socket. */
  onPrefetch?: (message: Extract<SupernodeMessage, { type: 'prefetch' }>, reply: (answer: PeerMessage) => void, progress?: (message: PeerMessage) => void) => void;
  /** A supernode asked for the image to be pulled into the container runtime (prewarm); one answer. */
  onRuntimePull?: (message: Extract<SupernodeMessage, { type: 'runtimePull' }>, reply: (answer: PeerMessage) => void) => void;
  /** Blobs held in full, announced after every (re)registration so a restarted supernode knows them. */
  inventory?: () => Array<{ digest: string; pieceCount: number }>;
}

/** Pieces announced per frame (the wire schema allows more; frames stay small). */
const PIECES_PER_FRAME = 4096;

/**
 * The peer's WebSocket to each supernode: register, heartbeat, reconnect with
 * backoff. Losing it never stops the peer from serving or downloading.
 */
export class SupernodeSession {
  private readonly log: Logger;
  private readonly init: SupernodeSessionInit;
  private readonly sockets = new Map<string, WebSocket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  private readonly registered = new Set<string>();
  private readonly auth: ClusterAuth;

  constructor(components: { log: Logger }, init: SupernodeSessionInit) {
    this.log = components.log.child({ module: 'supernode-session' });
    this.init = init;
    this.auth = init.auth ?? new ClusterAuth({}, { token: init.token });
  }

  start(): void {
    for (const url of this.init.supernodeUrls) this.connect(url, 0);
  }

  /** Supernodes that have acknowledged this peer's registration. */
  get registeredCount(): number {
    return this.registered.size;
  }

  send(message: PeerMessage): void {
    const data = JSON.stringify(message);
    for (const ws of this.sockets.values()) {
      // Membership traffic is tiny; a socket with a backlog is left to catch up.
      if (ws.readyState === WebSocket.OPEN && ws.bufferedAmount < MAX_WS_FRAME_BYTES) ws.send(data);
    }
  }

  /**
   * An answer on the socket the request came on. Answers are small and one per
   * blob asked for (bounded by the prefetch queue), so they are not dropped
   * when the socket has a backlog: the supernode waits for each.
   */
  private reply(ws: WebSocket, message: PeerMessage): void {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
  }

  private connect(url: string, attempt: number): void {
    if (this.closed) return;
    const wsUrl = `${url.replace(/^http/, 'ws')}${API_PREFIX}/peers/ws`;
    const target = new URL(wsUrl);
    const ws = new WebSocket(wsUrl, {
      headers: this.auth.sign('GET', `${target.pathname}${target.search}`, { kind: 'supernode' }),
      maxPayload: MAX_WS_FRAME_BYTES,
      handshakeTimeout: 5_000,
    });
    this.sockets.set(url, ws);
    let beat: NodeJS.Timeout | undefined;
    ws.on('open', () => {
      attempt = 0;
      const register: PeerMessage = {
        type: 'register',
        peerId: this.init.peerId,
        advertiseUrl: this.init.advertiseUrl,
        ...(this.init.zone === undefined ? {} : { zone: this.init.zone }),
        ...(this.init.nodeName === undefined ? {} : { nodeName: this.init.nodeName }),
        ...(this.init.peerSecret === undefined ? {} : { peerSecret: this.init.peerSecret }),
      };
      ws.send(JSON.stringify(register));
      beat = setInterval(() => {
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'heartbeat' } satisfies PeerMessage));
      }, HEARTBEAT_INTERVAL_MS);
      beat.unref();
    });
    ws.on('message', (data: Buffer) => {
      try {
        const message = parseFrame(SupernodeMessageSchema, data, 'supernode message');
        if (message.type === 'registered') {
          this.registered.add(url);
          this.log.info({ supernode: url }, 'registered with supernode');
          for (const blob of this.init.inventory?.() ?? []) {
            for (let from = 0; from < blob.pieceCount; from += PIECES_PER_FRAME) {
              const pieces = Array.from({ length: Math.min(PIECES_PER_FRAME, blob.pieceCount - from) }, (_, i) => from + i);
              if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'have', digest: blob.digest, pieces } satisfies PeerMessage));
            }
          }
        } else if (message.type === 'prefetch') {
          if (this.init.onPrefetch === undefined) {
            for (const blob of message.blobs) this.reply(ws, { type: 'prefetched', job: message.job, digest: blob.digest, ok: false, error: 'this peer does not prefetch' });
          } else {
            this.init.onPrefetch(message, (answer) => this.reply(ws, answer), (progress) => this.reply(ws, progress));
          }
        } else if (message.type === 'runtimePull') {
          if (this.init.onRuntimePull === undefined) this.reply(ws, { type: 'runtimePulled', job: message.job, outcome: 'unavailable', durationMs: 0, error: 'this peer does not pull into a container runtime' });
          else this.init.onRuntimePull(message, (answer) => this.reply(ws, answer));
        } else {
          this.log.warn({ supernode: url, code: message.code, msg: message.message }, 'supernode reported an error');
        }
      } catch (err) {
        this.log.warn({ supernode: url, err: (err as Error).message }, 'bad frame from supernode');
      }
    });
    ws.on('error', (err) => this.log.debug({ supernode: url, err: err.message }, 'supernode socket error'));
    ws.on('close', () => {
      if (beat !== undefined) clearInterval(beat);
      if (this.registered.delete(url)) this.log.warn({ supernode: url }, 'lost supernode session');
      if (this.closed) return;
      const wait = Math.max(RECONNECT_BASE_MS, backoffMs(attempt, RECONNECT_BASE_MS, RECONNECT_MAX_MS));
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.connect(url, attempt + 1);
      }, wait);
      timer.unref();
      this.timers.add(timer);
    });
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    for (const ws of this.sockets.values()) ws.terminate();
    this.sockets.clear();
  }
}
