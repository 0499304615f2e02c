import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import { request } from 'undici';
import type { ExecutionContext } from 'ava';
import { API_PREFIX } from '@shoal/core';

/** Everything a listener received: method, raw URL and raw headers. */
export interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
}

/**
 * A ROGUE parent for security tests: a plain HTTP listener that records every
 * request and answers each with `status` (503 by default, so children move on).
 */
export async function startRogueListener(answer: (req: Recorded) => { status: number; body?: string } = () => ({ status: 503 })): Promise<{ url: string; port: number; requests: Recorded[]; close(): Promise<void> }> {
  const requests: Recorded[] = [];
  const server: Server = createServer((req, res) => {
    const recorded = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders };
    requests.push(recorded);
    const { status, body } = answer(recorded);
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(body ?? '{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Sends a recorded request again, byte for byte (method, raw URL, headers but Host), to another port. */
export function replay(port: number, r: Recorded): Promise<number> {
  const headers: Record<string, string> = {};
  for (let i = 0; i + 1 < r.rawHeaders.length; i += 2) {
    const name = r.rawHeaders[i] as string;
    if (name.toLowerCase() === 'host' || name.toLowerCase() === 'connection') continue;
    headers[name] = r.rawHeaders[i + 1] as string;
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method: r.method, path: r.url, headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

/** A raw WebSocket session with a supernode (the rogue's, or a test's), collecting every frame. */
export interface WsSession {
  ws: WebSocket;
  received: Array<{ type: string; code?: string; peerId?: string; message?: string }>;
  closed: Promise<number>;
  send(message: object): void;
  waitFor(predicate: (m: { type: string; code?: string; peerId?: string }) => boolean, timeoutMs?: number): Promise<void>;
}

export async function openPeerSocket(supernodeUrl: string, headers: Record<string, string>): Promise<WsSession> {
  const ws = new WebSocket(`${supernodeUrl.replace(/^http/, 'ws')}${API_PREFIX}/peers/ws`, { headers });
  const received: WsSession['received'] = [];
  ws.on('message', (data: Buffer) => received.push(JSON.parse(data.toString('utf8')) as WsSession['received'][number]));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => ws.once('open', () => resolve()).once('error', reject));
  return {
    ws,
    received,
    closed,
    send: (message) => ws.send(JSON.stringify(message)),
    async waitFor(predicate, timeoutMs = 10_000) {
      const end = Date.now() + timeoutMs;
      while (!received.some(predicate)) {
        if (Date.now() > end) throw new Error(`no such frame within ${timeoutMs} ms; got ${JSON.stringify(received).slice(0, 500)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

/** GETs a blob through a node's proxy; its bytes' digest and where they came from. */
export async function pullBlob(proxyUrl: string, registryHost: string, repository: string, digest: string): Promise<{ status: number; source: string | undefined; digest: string }> {
  const res = await request(`${proxyUrl}/v2/${repository}/blobs/${digest}?ns=${encodeURIComponent(registryHost)}`);
  const hash = createHash('sha256');
  for await (const chunk of res.body) hash.update(chunk as Buffer);
  const source = res.headers['x-shoal-source'];
  return { status: res.statusCode, source: typeof source === 'string' ? source : undefined, digest: `sha256:${hash.digest('hex')}` };
}

/** As pullBlob, asserting a 200 with the blob's own bytes; where they came from (X-Shoal-Source). */
export async function pullBlobChecked(t: ExecutionContext, proxyUrl: string, registryHost: string, repository: string, digest: string): Promise<string | undefined> {
  const got = await pullBlob(proxyUrl, registryHost, repository, digest);
  t.is(got.status, 200);
  t.is(got.digest, digest);
  return got.source;
}
