import { networkInterfaces } from 'node:os';
import { audienceHost, peerAudienceCheck } from '@shoal/core';

/**
 * The audiences (`host:port`) a peer answers to: its advertised URL (what the
 * supernode hands children), and each of this machine's own addresses and
 * `localhost` with the port it is bound to (DHT finders dial the address they
 * saw, a proxy running apart dials loopback). A request signed for any other
 * address (another peer's, a rogue's) is refused, so a request a rogue parent
 * received cannot be replayed here.
 */
export function ownAudienceHosts(advertiseUrl: string, boundPort: number): string[] {
  const hosts = new Set<string>([audienceHost(new URL(advertiseUrl)), `localhost:${boundPort}`]);
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) hosts.add(`${a.family === 'IPv6' ? `[${a.address.toLowerCase()}]` : a.address}:${boundPort}`);
  }
  return [...hosts];
}

/** The peer's audience check, filled in once its port and advertised URL are known. */
export class PeerAudience {
  private check: (audience: string) => boolean = () => false;

  readonly isMe = (audience: string): boolean => this.check(audience);

  set(advertiseUrl: string, boundPort: number): void {
    this.check = peerAudienceCheck(ownAudienceHosts(advertiseUrl, boundPort));
  }
}
