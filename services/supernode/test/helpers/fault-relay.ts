import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';

/** What the relay does to one connection's answers, chosen from its first request's head. */
export type RelayFault =
  | { kind: 'pass' }
  /** Forwards this many answer bytes, then resets both sides. */
  | { kind: 'cut'; afterBytes: number }
  /** Forwards this many answer bytes, then nothing more: the connection stays open, silent. */
  | { kind: 'stall'; afterBytes: number };

export interface FaultRelay {
  /** `127.0.0.1:PORT`: give this to the client as the registry's host. */
  host: string;
  /** The first request head of every connection, in order. */
  heads: string[];
  /** Answer bytes forwarded to clients, over all connections. */
  forwardedBytes(): number;
  close(): Promise<void>;
}

/**
 * A real TCP relay in front of a real registry, which breaks the connections it is
 * told to (a fault injector; the registry behind it is docker-registry). Answers are
 * paced at `bytesPerSec` per connection so that fetches overlap in time.
 */
export async function startFaultRelay(upstreamPort: number, faultFor: (head: string, index: number) => RelayFault, bytesPerSec = Infinity): Promise<FaultRelay> {
  const heads: string[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let forwarded = 0;
  const server = createServer((client) => {
    const upstream = connect(upstreamPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    let fault: RelayFault | undefined;
    let head = '';
    client.on('data', (chunk: Buffer) => {
      if (fault === undefined) {
        head += chunk.toString('latin1');
        if (head.includes('\r\n\r\n')) {
          fault = faultFor(head, heads.length);
          heads.push(head.slice(0, head.indexOf('\r\n\r\n')));
        }
      }
      upstream.write(chunk);
    });
    let sent = 0;
    upstream.on('data', (chunk: Buffer) => {
      const limit = fault === undefined || fault.kind === 'pass' ? Infinity : fault.afterBytes;
      const part = chunk.subarray(0, Math.max(0, Math.min(chunk.length, limit - sent)));
      sent += part.length;
      forwarded += part.length;
      if (part.length > 0) client.write(part);
      if (sent >= limit) {
        if (fault?.kind === 'cut') client.resetAndDestroy();
        upstream.pause();
        return;
      }
      if (Number.isFinite(bytesPerSec)) {
        upstream.pause();
        const timer = setTimeout(() => {
          timers.delete(timer);
          upstream.resume();
        }, (part.length * 1000) / bytesPerSec);
        timers.add(timer);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    heads,
    forwardedBytes: () => forwarded,
    async close() {
      for (const timer of timers) clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}
