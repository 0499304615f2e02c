import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { silentLogger, type Digest } from '@shoal/core';
import { ParentFailedError, PieceClient, SupernodeClient } from '../src/index.js';

const DIGEST = `sha256:${'c'.repeat(64)}` as Digest;

// Destroying an undici body before its end emits 'error' on it; with nobody
// listening, that is an uncaught exception and the node agent dies. Every
// error answer from a parent or a supernode is a small body dropped unread,
// so each must be dropped quietly: ava fails this file on any uncaught exception.
async function answering(status: number): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ code: 'SHOAL_TEST', message: 'refused' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

for (const [status, kind] of [
  [404, 'missing'],
  [503, 'busy'],
  [500, 'unreachable'],
] as const) {
  test(`a parent answering ${status} fails the piece as '${kind}' and nothing else`, async (t) => {
    const { url, server } = await answering(status);
    const pieces = new PieceClient({ token: undefined });
    t.teardown(async () => {
      await pieces.close();
      server.close();
    });
    for (let i = 0; i < 20; i++) {
      const error = await t.throwsAsync(pieces.fetchPiece(url, DIGEST, i, new AbortController().signal), { instanceOf: ParentFailedError });
      t.is(error?.kind, kind);
    }
    // An 'error' emitted by a dropped body surfaces a tick or more later.
    await new Promise((resolve) => setTimeout(resolve, 100));
  });
}

test('a supernode answering 500 for a piece fails the fetch and nothing else', async (t) => {
  const { url, server } = await answering(500);
  const supernodes = new SupernodeClient({ log: silentLogger() }, { supernodeUrls: [url], token: undefined });
  t.teardown(async () => {
    await supernodes.close();
    server.close();
  });
  for (let i = 0; i < 20; i++) await t.throwsAsync(supernodes.fetchPiece(url, DIGEST, i));
  await new Promise((resolve) => setTimeout(resolve, 100));
});
