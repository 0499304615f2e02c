import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'undici';
import {
  API_PREFIX,
  audienceHost,
  destroyQuietly,
  parseAdvertiseUrl,
  PeerIdentitySchema,
  urlHostOfAddress,
  parseWire,
  type ClusterAuth,
  type Logger,
  withDeadline,
} from '@shoal/core';
import { PeerIdTakenError } from './errors.js';
import type { PeerTable } from './peer-table.js';
import type { Swarm } from './swarm.js';

/** Identity checks of advertised URLs running at once; more registrations wait for their peer's next one. */
export const MAX_IDENTITY_CHECKS = 64;
/** How long a peer has to answer an identity check at its advertised URL. Milliseconds: 3 s. */
export const IDENTITY_CHECK_TIMEOUT_MS = 3_000;
/** Largest identity answer read. Bytes: 1 KiB. */
const MAX_IDENTITY_BYTES = 1024;

/** Asks whoever answers at `url` for its peer id; true when it is `peerId`. Never throws. */
export type IdentityCheck = (url: string, peerId: string, signal: AbortSignal) => Promise<boolean>;

/** The identity check over HTTP, signed like every request between Shoal processes. */
export function httpIdentityCheck(auth: ClusterAuth): IdentityCheck {
  return async (url, peerId, signal) => {
    const nonce = randomBytes(16).toString('hex');
    const path = `${API_PREFIX}/identity?nonce=${nonce}`;
    const target = new URL(url);
    try {
      const response = await httpRequest(new URL(path, target), {
        method: 'GET',
        headers: auth.sign('GET', path, { kind: 'peer', host: audienceHost(target) }),
        signal,
      });
      if (response.statusCode !== 200) {
        destroyQuietly(response.body);
        return false;
      }
      let text = '';
      for await (const chunk of response.body) {
        text += (chunk as Buffer).toString('utf8');
        if (text.length > MAX_IDENTITY_BYTES) {
          destroyQuietly(response.body);
          return false;
        }
      }
      const answer: unknown = JSON.parse(text);
      const identity = parseWire(PeerIdentitySchema, answer, 'identity answer');
      return identity.peerId === peerId && identity.nonce === nonce;
    } catch {
      return false;
    }
  };
}

export interface RegisterRequest {
  peerId: string;
  advertiseUrl: string;
  zone: string | undefined;
  nodeName?: string | undefined;
  /** The peer's own secret, as sent. */
  peerSecret?: string | undefined;
  /** The registering socket (undefined: a schedule call). */
  owner?: object | undefined;
  /** The connection's remote address, as this supernode sees it. */
  remoteAddress: string | undefined;
}

/**
 * Who may register which peer id, and which advertised URLs become parents.
 *
 * - The advertised URL is validated (http(s)://host:port, nothing else).
 * - A peer is named as a parent only once its URL is bound to it: the URL's host
 *   is the address its connection came from, or the peer answering at the URL
 *   says it is this peer id (an identity check, signed, with a fresh nonce).
 *   Until then it downloads like any peer but is nobody's parent.
 * - A live peer id belongs to its session: a second registration is refused
 *   unless it comes from the same socket or shows the peer's secret.
 */
export class Registrar {
  private readonly log: Logger;
  private readonly peers: PeerTable;
  private readonly swarm: Swarm;
  private readonly check: IdentityCheck;
  /** peerId → URL being checked; bounded by MAX_IDENTITY_CHECKS. */
  private readonly checking = new Map<string, string>();
  private readonly abort = new AbortController();

  constructor(components: { log: Logger; peers: PeerTable; swarm: Swarm; identityCheck: IdentityCheck }) {
    this.log = components.log.child({ module: 'registration' });
    this.peers = components.peers;
    this.swarm = components.swarm;
    this.check = components.identityCheck;
  }

  /** Registers a peer; throws BadRequestError (bad URL) or PeerIdTakenError. */
  register(r: RegisterRequest): void {
    const url = parseAdvertiseUrl(r.advertiseUrl);
    const secretHash = r.peerSecret === undefined ? undefined : createHash('sha256').update(r.peerSecret).digest('hex');
    const session = { owner: r.owner, secretHash };
    if (!this.peers.mayClaim(r.peerId, session)) {
      this.log.warn({ peerId: r.peerId, remote: r.remoteAddress }, 'registration refused: peer id held by a live peer');
      throw new PeerIdTakenError(r.peerId);
    }
    const entry = this.peers.register(r.peerId, url, r.zone, r.nodeName, session);
    const bound = r.remoteAddress !== undefined && new URL(url).hostname === urlHostOfAddress(r.remoteAddress);
    if (bound) entry.advertiseCheck = 'bound';
    const serves = entry.advertiseCheck === 'bound' || entry.advertiseCheck === 'verified';
    this.swarm.peerJoined(r.peerId, url, r.zone, serves);
    if (!serves) this.startIdentityCheck(r.peerId, url, r.zone, r.remoteAddress);
  }

  private startIdentityCheck(peerId: string, url: string, zone: string | undefined, remote: string | undefined): void {
    if (this.checking.get(peerId) === url) return;
    if (this.checking.size >= MAX_IDENTITY_CHECKS) {
      const entry = this.peers.get(peerId);
      if (entry !== undefined) entry.advertiseCheck = 'failed';
      this.log.warn({ peerId, advertiseUrl: url }, 'too many identity checks running; the peer is not a parent until it registers again');
      return;
    }
    this.checking.set(peerId, url);
    const deadline = withDeadline(this.abort.signal, IDENTITY_CHECK_TIMEOUT_MS);
    void this.check(url, peerId, deadline.signal).then((ok) => {
      deadline.clear();
      if (this.checking.get(peerId) === url) this.checking.delete(peerId);
      const entry = this.peers.get(peerId);
      if (entry === undefined || entry.advertiseUrl !== url) return;
      entry.advertiseCheck = ok ? 'verified' : 'failed';
      if (ok) {
        this.swarm.peerJoined(peerId, url, zone, true);
        this.log.info({ peerId, advertiseUrl: url, remote }, 'advertised URL verified: the peer answers there');
      } else {
        this.log.warn({ peerId, advertiseUrl: url, remote }, 'advertised URL not verified (its host is not the connection address, and no peer of this id answers there): not named as a parent');
      }
    });
  }

  close(): void {
    this.abort.abort();
  }
}
