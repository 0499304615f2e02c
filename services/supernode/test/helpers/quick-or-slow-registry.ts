import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Digest } from '@shoal/core';

const MiB = 1024 * 1024;

/**
 * A FAKE registry (docker-registry cannot be made to send slowly): blobs in
 * `quick` are answered whole at once; any other digest is answered with a
 * 4 MiB length and then a byte every 200 ms, so its fetch holds its slot.
 */
export async function startQuickOrSlowRegistry(quick: Map<Digest, Buffer>): Promise<{ host: string; close: () => Promise<void> }> {
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((req, res) => {
    const digest = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(req.url ?? '')?.[1] as Digest | undefined;
    const body = digest === undefined ? undefined : quick.get(digest);
    if (body !== undefined) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
      res.end(body);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(4 * MiB) });
    const timer = setInterval(() => res.write(Buffer.from([1])), 200);
    timers.add(timer);
    res.on('close', () => {
      clearInterval(timer);
      timers.delete(timer);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      for (const timer of timers) clearInterval(timer);
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
