import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { WebSocketServer, type WebSocket } from 'ws';
import { API_PREFIX, isSupernodeAudience, MAX_WS_FRAME_BYTES, parseFrame, PeerMessageSchema, type ClusterAuth, type SupernodeMessage } from '@shoal/core';
import { authenticate, RefusalLog, tokenRejections } from '@shoal/service-kit';
import type { PeerTable } from '../peer-table.js';
import type { PeerLinks } from '../peer-links.js';
import type { Swarm } from '../swarm.js';
import { PeerIdTakenError } from '../errors.js';
import type { Registrar } from '../registration.js';
import { parseDigest } from '@shoal/core';

export const PEERS_WS_PATH = `${API_PREFIX}/peers/ws`;
/** Bad frames a connection may send before it is closed. */
const MAX_BAD_FRAMES = 10;

/**
 * Peers keep one WebSocket to the supernode: they register, beat every few
 * seconds, announce pieces and the blobs they no longer hold, and answer
 * preheat's prefetch requests. Every frame is parsed at the edge; a bad frame
 * is answered with an error frame and logged, and never takes the supernode
 * down.
 */
export function attachPeersWebSocket(
  app: FastifyInstance,
  peers: PeerTable,
  swarm: Swarm,
  auth: ClusterAuth,
  options: { idleMs: number; registrar: Registrar; links?: PeerLinks | undefined },
): void {
  const log = app.log.child({ module: 'peers-ws' });
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_WS_FRAME_BYTES });
  const send = (ws: WebSocket, message: SupernodeMessage): void => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
  };

  wss.on('connection', (ws: WebSocket, request: IncomingMessage) => {
    let peerId: string | undefined;
    let badFrames = 0;
    // This socket as a link the preheat jobs can send `prefetch` on.
    const link = (message: SupernodeMessage): boolean => {
      if (ws.readyState !== ws.OPEN) return false;
      send(ws, message);
      return true;
    };
    const remote = request.socket.remoteAddress;
    // ws turns the socket's own timeout off: without this, a peer that connects
    // and goes silent (or never registers) would hold its socket forever.
    let idle: NodeJS.Timeout | undefined;
    const armIdle = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        log.warn({ peerId, remote, idleMs: options.idleMs }, 'peer socket silent; closing it');
        ws.terminate();
      }, options.idleMs);
      idle.unref();
    };
    armIdle();
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      armIdle();
      try {
        if (isBinary) throw new Error('binary frames are not part of the protocol');
        const message = parseFrame(PeerMessageSchema, data, 'peer message');
        switch (message.type) {
          case 'register':
            // Validates the URL, binds it to this connection and refuses a live id held by another peer.
            options.registrar.register({
              peerId: message.peerId,
              advertiseUrl: message.advertiseUrl,
              zone: message.zone,
              nodeName: message.nodeName,
              peerSecret: message.peerSecret,
              owner: ws,
              remoteAddress: remote,
            });
            if (peerId !== undefined && peerId !== message.peerId) {
              options.links?.detach(peerId, link);
              peers.remove(peerId, ws);
            }
            peerId = message.peerId;
            options.links?.attach(message.peerId, link);
            log.info({ peerId, nodeName: message.nodeName, advertiseUrl: message.advertiseUrl, remote }, 'peer registered');
            send(ws, { type: 'registered', peerId });
            break;
          case 'heartbeat':
            if (peerId === undefined || !peers.heartbeat(peerId)) throw new Error('heartbeat before register');
            break;
          case 'have':
            if (peerId === undefined) throw new Error('have before register');
            swarm.peerHas(peerId, parseDigest(message.digest), message.pieces);
            break;
          case 'arriving':
            if (peerId === undefined) throw new Error('arriving before register');
            swarm.peerArriving(peerId, parseDigest(message.digest), message.pieces);
            break;
          case 'arrivalFailed':
            if (peerId === undefined) throw new Error('arrivalFailed before register');
            swarm.peerArrivalFailed(peerId, parseDigest(message.digest), message.pieces);
            break;
          case 'drop':
            if (peerId === undefined) throw new Error('drop before register');
            swarm.peerDropped(peerId, parseDigest(message.digest));
            break;
          case 'prefetched':
            if (peerId === undefined) throw new Error('prefetched before register');
            options.links?.prefetched(peerId, message);
            break;
          case 'prefetchProgress':
            if (peerId === undefined) throw new Error('prefetchProgress before register');
            options.links?.progress(peerId, message);
            break;
          case 'runtimePulled':
            if (peerId === undefined) throw new Error('runtimePulled before register');
            options.links?.runtimePulled(peerId, message);
            break;
        }
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (err instanceof PeerIdTakenError) {
          // Not a malformed frame, but this socket has no business here: say why and close.
          send(ws, { type: 'error', code: err.code, message: message.slice(0, 2000) });
          ws.close(1008, 'peer id taken');
          return;
        }
        badFrames++;
        log.warn({ peerId, remote, err: message }, 'bad frame from peer');
        send(ws, { type: 'error', code: 'SHOAL_BAD_FRAME', message: message.slice(0, 2000) });
        if (badFrames >= MAX_BAD_FRAMES) ws.close(1008, 'too many bad frames');
      }
    });
    ws.on('close', () => {
      clearTimeout(idle);
      if (peerId !== undefined) {
        options.links?.detach(peerId, link);
        // Only if this socket still holds the id: a reconnected socket of the same peer stays.
        peers.remove(peerId, ws);
        log.info({ peerId }, 'peer disconnected');
      }
    });
    ws.on('error', (err) => log.warn({ peerId, err: err.message }, 'peer socket error'));
  });

  const refusals = new RefusalLog(log);
  app.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (request.url ?? '').split('?')[0];
    // node's HTTP server takes its 'error' listener off a socket it hands to
    // 'upgrade' (ws adds its own in handleUpgrade): a client that resets while
    // we refuse it would otherwise be an uncaught ECONNRESET.
    const refuse = (status: string): void => {
      socket.on('error', (err) => log.debug({ remote: request.socket.remoteAddress, err: err.message }, 'refused upgrade socket failed'));
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (path !== PEERS_WS_PATH) {
      refuse('404 Not Found');
      return;
    }
    const authenticated = authenticate(auth, request, isSupernodeAudience);
    if (!authenticated.ok) {
      refusals.refused(request.socket.remoteAddress, authenticated.reason, 'peer session');
      tokenRejections(app.metrics, 'shoal_supernode_').inc({ transport: 'websocket', reason: authenticated.reason });
      refuse('401 Unauthorized');
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
  });

  app.addHook('onClose', async () => {
    for (const ws of wss.clients) ws.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });
}
