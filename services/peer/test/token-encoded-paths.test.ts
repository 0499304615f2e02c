/**
 * Regression: the token check tested the raw URL's prefix while the router matched the
 * decoded path, so `GET /api/%761/blobs/<digest>` streamed a whole private blob from a
 * peer without the cluster token.
 *
 * Every route, in many spellings, without the token: only /healthz, /readyz and
 * /metrics answer; everything else, routed or not, answers 401. A real PieceStore holds
 * the blob; the swarm behind the peer is a FAKE that has nothing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import test from 'ava';
import fc from 'fast-check';
import { API_PREFIX, digestOf, HEADER, silentLogger, SwarmUnavailableError, type BlobProvider } from '@shoal/core';
import { PieceStore } from '@shoal/store';
import { pathSpellings, rawRequestStatus } from '@shoal/testkit';
import { buildPeerApp } from '../src/app.js';

const TOKEN = 'encoded-paths-token-0123456789abcdef';
const BLOB = Buffer.from('private layer bytes '.repeat(100));
const DIGEST = digestOf(BLOB);

const emptySwarm: BlobProvider & { activeDownloads: number } = {
  activeDownloads: 0,
  async openBlob() {
    throw new SwarmUnavailableError('fake swarm: nothing here');
  },
};

test('no spelling of a peer route answers without the token', async (t) => {
  t.timeout(120_000);
  const dir = await mkdtemp(join(tmpdir(), 'shoal-peer-token-'));
  const store = await PieceStore.open({ log: silentLogger() }, { dir });
  await store.ingest(DIGEST, BLOB.length, Readable.from([BLOB]));
  const app = await buildPeerApp({ log: silentLogger(), store, peer: emptySwarm }, { token: TOKEN });
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.teardown(async () => {
    await app.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP port');
  const port = address.port;

  const whole = `${API_PREFIX}/blobs/${DIGEST}?registry=registry.example&repository=a/b&size=${BLOB.length}`;
  // The whole-blob route asks the (empty, fake) swarm: 503 shows the request got past the token.
  t.is(await rawRequestStatus(port, 'GET', whole, { [HEADER.token]: TOKEN }), 503);
  t.is(await rawRequestStatus(port, 'GET', `${API_PREFIX}/blobs/${DIGEST}/pieces/0`, { [HEADER.token]: TOKEN }), 200);
  t.is(await rawRequestStatus(port, 'GET', whole), 401);

  const routes = [whole, `${API_PREFIX}/blobs/${DIGEST}/info`, `${API_PREFIX}/blobs/${DIGEST}/pieces/0`, '/nowhere'];
  const leaks: string[] = [];
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...routes).chain(pathSpellings), async (spelt) => {
      const status = await rawRequestStatus(port, 'GET', spelt);
      if (status !== 401 && status !== 400) leaks.push(`GET ${spelt} → ${status}`);
    }),
    { numRuns: 400, seed: 8_002 },
  );
  t.deepEqual(leaks, []);
});
