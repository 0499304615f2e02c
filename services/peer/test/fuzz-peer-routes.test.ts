/**
 * Fuzzes the peer's HTTP API (app.inject) with arbitrary paths, query strings
 * (repeated and missing parameters) and Range headers, against a real empty
 * PieceStore and a FAKE swarm that serves one blob from memory. Every answer
 * is a success with the announced length, or a 4xx/503 with `{ code, message }`;
 * never a 500, whatever the input.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import test from 'ava';
import fc from 'fast-check';
import { API_PREFIX, silentLogger, SwarmUnavailableError, type BlobProvider, type BlobRequest, type BlobStream, type ByteRange, type Digest } from '@shoal/core';
import { PieceStore } from '@shoal/store';
import { buildPeerApp } from '../src/app.js';

const SEED = 20_240_517;
const BLOB = Buffer.from('peer fuzz blob '.repeat(500));
const DIGEST = `sha256:${createHash('sha256').update(BLOB).digest('hex')}` as Digest;

/** A FAKE swarm: BLOB (whole or a range) when the size asked for is right, nothing else. */
const swarm: BlobProvider & { activeDownloads: number } = {
  activeDownloads: 0,
  async openBlob(request: BlobRequest, range: ByteRange | undefined): Promise<BlobStream> {
    if (request.digest !== DIGEST || request.sizeBytes !== BLOB.length) throw new SwarmUnavailableError('fake swarm: not here');
    return { source: 'peer', sizeBytes: BLOB.length, body: Readable.from([range === undefined ? BLOB : BLOB.subarray(range.start, range.end + 1)]) };
  },
};

const bits = fc.string({ unit: 'binary', maxLength: 5 });
const digest = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(DIGEST, `sha256:${'0'.repeat(64)}`) }, fc.constantFrom('sha256:zz', 'md5:1', '..', '%2e%2e', '%zz', ''), bits);
const value = fc.oneof({ weight: 3, arbitrary: fc.constantFrom('registry.example', 'a/b', String(BLOB.length), '0', '-1', '1e3', '99999999999999999999') }, fc.constantFrom('', 'bad host', 'A/B', '%zz'), bits.map(encodeURIComponent));
const query = fc
  .array(fc.tuple(fc.constantFrom('registry', 'repository', 'size', 'x', 'registry[]', '__proto__'), value), { maxLength: 6 })
  .map((pairs) => (pairs.length === 0 ? '' : `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`));
const path = fc.oneof(
  { weight: 3, arbitrary: digest.map((d) => `${API_PREFIX}/blobs/${d}`) },
  fc.tuple(digest, fc.oneof(fc.nat({ max: 5 }).map(String), fc.constantFrom('-1', '1e3', '9999999999', '', 'x'), bits)).map(([d, i]) => `${API_PREFIX}/blobs/${d}/pieces/${i}`),
  digest.map((d) => `${API_PREFIX}/blobs/${d}/info`),
  fc.constantFrom('/healthz', '/readyz', '/metrics', '/', `${API_PREFIX}/`, `${API_PREFIX}/blobs/`),
);
/** What a proxy running apart asks for, with the parameters in any order, sometimes repeated. */
const plausibleQuery = fc
  .shuffledSubarray([`registry=registry.example`, `repository=a/b`, `size=${BLOB.length}`, `size=${BLOB.length}`, 'registry=other.example'], { minLength: 3 })
  .map((pairs) => `?${pairs.join('&')}`);
const headers = fc.record(
  {
    range: fc.oneof(fc.constantFrom('bytes=0-1', 'bytes=5-', 'bytes=-3', 'bytes=99999-', 'bytes=3-1', 'bytes=x', 'bytes=0-1,4-6'), fc.string({ maxLength: 20 })),
    'x-shoal-registry-authorization': fc.constantFrom('Bearer x', ''),
  },
  { requiredKeys: [] },
);

test('arbitrary requests to the peer get a success or a 4xx/503 with { code, message }, never a 500', async (t) => {
  t.timeout(60_000);
  const dir = await mkdtemp(join(tmpdir(), 'shoal-peer-fuzz-'));
  const store = await PieceStore.open({ log: silentLogger() }, { dir });
  t.teardown(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const app = await buildPeerApp({ log: silentLogger(), store, peer: swarm }, { token: undefined });
  t.teardown(() => app.close());
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(fc.constantFrom<'GET' | 'HEAD' | 'POST' | 'DELETE'>('GET', 'GET', 'GET', 'HEAD', 'POST', 'DELETE'), path, fc.oneof(query, plausibleQuery), headers, async (method, p, q, h) => {
      const response = await app.inject({ method, url: `${p}${q}`, headers: h });
      statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
      const status = response.statusCode;
      if (status >= 200 && status <= 299) {
        const length = response.headers['content-length'];
        if (method === 'GET' && length !== undefined && Number(length) !== response.rawPayload.length) throw new Error(`content-length ${String(length)} for ${response.rawPayload.length} bytes`);
        return;
      }
      if (status !== 503 && (status < 400 || status > 499)) throw new Error(`${status}: ${response.body.slice(0, 300)}`);
      if (method === 'HEAD') return;
      const body = JSON.parse(response.body) as { code?: unknown; message?: unknown };
      if (typeof body.code !== 'string' || typeof body.message !== 'string') throw new Error(`${status} without { code, message }: ${response.body.slice(0, 200)}`);
    }),
    { seed: SEED, numRuns: 2_000, includeErrorInReport: true },
  );
  t.log(`statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
  for (const status of [200, 206, 400, 404, 416]) t.true((statuses.get(status) ?? 0) > 0, `no ${status}`);
});
