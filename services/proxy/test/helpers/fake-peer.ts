/**
 * A FAKE peer HTTP server (the other side of HttpBlobProvider) on 127.0.0.1:0.
 * Each test decides how it answers; every request is recorded.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakePeerRequest {
  method: string | undefined;
  url: string;
  headers: IncomingMessage['headers'];
}

export interface FakePeer {
  url: string;
  requests: FakePeerRequest[];
  close(): Promise<void>;
}

export async function startFakePeer(handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>): Promise<FakePeer> {
  const requests: FakePeerRequest[] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method, url: req.url ?? '', headers: req.headers });
    Promise.resolve(handler(req, res)).catch((err: unknown) => {
      res.destroy(err instanceof Error ? err : new Error(String(err)));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
