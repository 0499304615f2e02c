import { createServer, connect, type Server, type Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * A TCP relay on loopback in front of another server (a registry), whose
 * answers it passes on at most `bytesPerSecond` per connection: a slow
 * registry link for tests that need bytes to be still on their way.
 */
export interface ThrottledRelay {
  /** host:port to use in place of the target's. */
  host: string;
  /** Cuts every connection open now (as a registry link that resets would). */
  cutAll(): void;
  close(): Promise<void>;
}

export async function startThrottledRelay(targetPort: number, bytesPerSecond: number): Promise<ThrottledRelay> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(throttle(bytesPerSecond)).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('relay has no port');
  return {
    host: `127.0.0.1:${address.port}`,
    cutAll: () => {
      for (const s of sockets) s.destroy();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Passes bytes on in 16 KiB slices, paced to `bytesPerSecond` (no burst after an idle spell). */
function throttle(bytesPerSecond: number): Transform {
  let due = 0;
  const SLICE = 16 * 1024;
  return new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      const push = async (): Promise<void> => {
        for (let at = 0; at < chunk.length; at += SLICE) {
          const part = chunk.subarray(at, at + SLICE);
          due = Math.max(due, performance.now()) + (part.length / bytesPerSecond) * 1000;
          const wait = due - performance.now();
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
          this.push(part);
        }
      };
      push().then(() => done(), done);
    },
  });
}
