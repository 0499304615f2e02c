/**
 * Fuzzes the proxy with arbitrary paths, query strings, methods and headers
 * (app.inject, no socket) against FAKES: a registry client that never touches
 * the network and a swarm that serves some blobs and refuses others. Every
 * answer must be one containerd handles well (PROTOCOLS.md): never a 3xx,
 * 408 or 429; 4xx/5xx with an OCI error body; a 5xx only when the fake
 * registry answered trouble (the fakes never fail unexpectedly, so any other
 * 5xx, a 500 above all, came from the input); and memory stays bounded.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import test from 'ava';
import fc from 'fast-check';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { silentLogger, SwarmUnavailableError, type BlobProvider, type BlobRequest, type BlobStream, type ByteRange, type Digest } from '@shoal/core';
import { buildProxyApp } from '../src/app.js';
import { FAKE_GOOD_AUTHORIZATION, FakeRegistryClient } from './helpers/fake-registry.js';

const SEED = 20_240_517;
const OCI_CODES = new Set(['BLOB_UNKNOWN', 'MANIFEST_UNKNOWN', 'NAME_UNKNOWN', 'NAME_INVALID', 'DIGEST_INVALID', 'RANGE_INVALID', 'UNAUTHORIZED', 'DENIED', 'TOOMANYREQUESTS', 'UNSUPPORTED', 'UNKNOWN']);

/** A FAKE swarm: serves the blobs in `served` (whole or a range), refuses every other one (the proxy then falls back to the registry). */
class FakeSwarmServingSome implements BlobProvider {
  constructor(private readonly served: ReadonlyMap<Digest, Buffer>) {}
  async openBlob(request: BlobRequest, range: ByteRange | undefined): Promise<BlobStream> {
    const content = this.served.get(request.digest);
    if (content === undefined) throw new SwarmUnavailableError('fake swarm: not here');
    const part = range === undefined ? content : content.subarray(range.start, range.end + 1);
    return { source: 'peer', sizeBytes: content.length, body: Readable.from([part]) };
  }
}

const sha = (bytes: Buffer): Digest => `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;
const IN_SWARM = Buffer.alloc(5_000, 7);
const REGISTRY_ONLY = Buffer.from('registry only '.repeat(300));
const EMPTY = Buffer.alloc(0);
const registry = new FakeRegistryClient([IN_SWARM, REGISTRY_ONLY, EMPTY]);
const swarm = new FakeSwarmServingSome(new Map([[sha(IN_SWARM), IN_SWARM], [sha(EMPTY), EMPTY]]));

/** A free-form string cut to a few characters (for mixing into structured values). */
const bits = fc.string({ unit: 'binary', maxLength: 4 });
const digests = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom<string>(sha(IN_SWARM), sha(REGISTRY_ONLY), sha(EMPTY), registry.manifestDigest, `sha256:${'0'.repeat(64)}`) },
  fc.constantFrom(sha(IN_SWARM), sha(REGISTRY_ONLY), sha(EMPTY), registry.manifestDigest, `sha256:${'0'.repeat(64)}`),
  fc.constantFrom('sha256:', 'sha256:zz', 'md5:abc', `sha256:${'A'.repeat(64)}`, `sha256%3A${'a'.repeat(64)}`, `sha512:${'a'.repeat(128)}`, '%', '%zz'),
);
const repositories = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('library/alpine', 'private/app', 'denied/app', 'a/b/c/d') },
  fc.constantFrom('Upper/Case', 'a//b', '..', 'a/../b', `${'a/'.repeat(130)}a`),
  fc.array(fc.constantFrom('a', 'b0', '-', '_', '.', '__', '/', '%2F', '%', 'é', '\u0000'), { minLength: 1, maxLength: 10 }).map((p) => p.join('')),
);
const references = fc.oneof({ weight: 2, arbitrary: digests }, { weight: 2, arbitrary: fc.constantFrom('latest', 'v1', 'throttled', 'moved', 'timeout', 'broken', 'unreachable', 'missing') }, fc.constantFrom('', 'x'.repeat(129), 'bad%tag', '%6Catest', '..'), bits);
const paths = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(repositories, digests).map(([r, d]) => `/v2/${r}/blobs/${d}`) },
  { weight: 3, arbitrary: fc.tuple(repositories, references).map(([r, ref]) => `/v2/${r}/manifests/${ref}`) },
  fc.constantFrom('/v2', '/v2/', '/v2/_catalog', '/v2/a/tags/list', '/healthz', '/readyz', '/metrics', '/', '//v2//', '/v2/a/blobs/uploads/', '/v2/a/manifests', '/v2/%', '/v2/%zz', `/v2/${'a'.repeat(3_000)}/blobs/x`, '*'),
  fc.array(fc.oneof(fc.constantFrom('/v2/', '/', 'blobs/', 'manifests/', 'a', 'sha256:', '%', '?', '#', ';', '..', '%00'), bits), { maxLength: 12 }).map((p) => `/${p.join('')}`),
);
const nsValues = fc.oneof(
  { weight: 4, arbitrary: fc.constant('registry.example') },
  fc.constantFrom( 'registry.example:5000', 'docker.io', '127.0.0.1%3A5000', '[::1]:5000', '', 'bad host', 'a:0', 'a:99999', '%zz', 'a'.repeat(300)),
  bits.map((s) => encodeURIComponent(s)),
);
const queries = fc.oneof(
  fc.constant(''),
  { weight: 5, arbitrary: nsValues.map((ns) => `?ns=${ns}`) },
  fc.tuple(nsValues, nsValues).map(([a, b]) => `?ns=${a}&ns=${b}`),
  fc.tuple(nsValues, bits).map(([ns, extra]) => `?x=${encodeURIComponent(extra)}&ns=${ns}&`),
  fc.constantFrom('?', '?ns', '?ns=', '?&&', '?ns=registry.example#frag'),
);
const methods = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom<InjectOptions['method']>('GET', 'HEAD') },
  { weight: 2, arbitrary: fc.constantFrom<InjectOptions['method']>('POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'PROPFIND', 'SEARCH') },
);
const rangeHeader = fc.oneof(
  fc.constantFrom('bytes=0-1', 'bytes=0-', 'bytes=-1', 'bytes=10-5', 'bytes=0-0,5-9', 'bytes=99999999-', 'bytes=abc', 'bytes=', 'items=0-1', 'bytes=-0', `bytes=${'0-1,'.repeat(400)}0-1`),
  fc.tuple(fc.nat({ max: 20_000 }), fc.nat({ max: 20_000 })).map(([a, b]) => `bytes=${a}-${b}`),
);
/** Header values made of characters HTTP allows (visible ASCII, space, tab, Latin-1). */
const headerText = fc.string({ unit: fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0xa0, max: 0xff })).map((c) => String.fromCharCode(c)), maxLength: 60 });
const authorization = fc.oneof(
  fc.constantFrom(FAKE_GOOD_AUTHORIZATION, 'Bearer ', 'Basic dXNlcjpwYXNz', 'Basic', ''),
  fc.constantFrom(0, 1, 100, 4_096, 8_000).map((n) => `Bearer ${'t'.repeat(n)}`),
  headerText,
);
const headers = fc.record(
  {
    range: rangeHeader,
    accept: fc.oneof(fc.constantFrom('application/vnd.oci.image.manifest.v1+json, */*', '*/*', ''), headerText, fc.constant('a/b, '.repeat(1_500))),
    authorization,
    'content-type': fc.constantFrom('application/json', 'text/plain', 'application/octet-stream', 'multipart/form-data; boundary=x'),
    'if-none-match': headerText,
    'x-shoal-token': headerText,
  },
  { requiredKeys: [] },
);
const payload = fc.option(fc.oneof(headerText, fc.constant('{"a":'.repeat(50)), fc.constant('x'.repeat(20_000))), { nil: undefined });

const anyRequest = fc.record({ method: methods, path: paths, query: queries, headers, payload });
/** Requests containerd could send (valid names, known content, the right ns), with fuzzed headers: they reach the swarm and the registry. */
const plausibleRequest = fc.record({
  method: fc.constantFrom<InjectOptions['method']>('GET', 'HEAD'),
  path: fc.oneof(
    fc.tuple(fc.constantFrom('library/alpine', 'private/app', 'a/b/c/d'), fc.constantFrom(sha(IN_SWARM), sha(REGISTRY_ONLY), sha(EMPTY))).map(([r, d]) => `/v2/${r}/blobs/${d}`),
    fc.tuple(fc.constantFrom('library/alpine', 'private/app'), fc.constantFrom('latest', 'v1', registry.manifestDigest, 'broken', 'unreachable')).map(([r, ref]) => `/v2/${r}/manifests/${ref}`),
  ),
  query: fc.constant('?ns=registry.example'),
  headers,
  payload: fc.constant(undefined),
});
const request = fc.oneof({ weight: 3, arbitrary: anyRequest }, { weight: 2, arbitrary: plausibleRequest });
type FuzzRequest = typeof request extends fc.Arbitrary<infer T> ? T : never;

/** Why `response` is not an answer containerd handles well, or undefined when it is. */
function problemWith(req: FuzzRequest, response: LightMyRequestResponse, troubleBefore: number): string | undefined {
  const status = response.statusCode;
  if (status < 200 || status > 599) return `status ${status} out of range`;
  if (status >= 300 && status <= 399) return `redirect status ${status}`;
  if (status === 408 || status === 429) return `status ${status} (containerd retries it on the same host)`;
  // The fakes never fail unexpectedly: a 5xx (a 500 above all) without upstream trouble came from the input.
  if (status >= 500 && registry.troubleAnswers === troubleBefore) return `${status} without upstream trouble: ${response.body.slice(0, 300)}`;
  if (status >= 400 && req.method !== 'HEAD') {
    if (!String(response.headers['content-type']).startsWith('application/json')) return `error with content-type ${String(response.headers['content-type'])}`;
    let body: unknown;
    try {
      body = JSON.parse(response.body);
    } catch {
      return `error body is not JSON: ${response.body.slice(0, 200)}`;
    }
    const errors = (body as { errors?: unknown }).errors;
    if (!Array.isArray(errors) || errors.length === 0) return `error body without errors[]: ${response.body.slice(0, 200)}`;
    for (const e of errors as Array<{ code?: unknown; message?: unknown }>) {
      if (typeof e.code !== 'string' || !OCI_CODES.has(e.code) || typeof e.message !== 'string') return `bad OCI error ${JSON.stringify(e).slice(0, 200)}`;
    }
  }
  if ((status === 200 || status === 206) && req.method === 'GET' && response.headers['content-length'] !== undefined) {
    if (Number(response.headers['content-length']) !== response.rawPayload.length) return `content-length ${String(response.headers['content-length'])} but ${response.rawPayload.length} bytes`;
  }
  const digest = response.headers['docker-content-digest'];
  if (status === 200 && req.method === 'GET' && typeof digest === 'string' && response.headers['content-range'] === undefined && sha(response.rawPayload) !== digest) {
    return `body does not hash to ${digest}`;
  }
  return undefined;
}

/** Forces a full garbage collection (flag set at run time, as ava's workers start without --expose-gc). */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
}

test('arbitrary requests get answers containerd handles well, without a crash or growing memory', async (t) => {
  t.timeout(60_000);
  const app = await buildProxyApp({ log: silentLogger(), registry, blobs: swarm });
  t.teardown(() => app.close());
  await app.ready();
  const inject = async (req: FuzzRequest): Promise<LightMyRequestResponse> =>
    app.inject({ method: req.method, url: `${req.path}${req.query}`, headers: req.headers, ...(req.payload === undefined ? {} : { payload: req.payload }) });

  // Warm up (JIT, metric label sets, first cache entries) before the baseline.
  await fc.assert(fc.asyncProperty(request, async (req) => void (await inject(req))), { seed: SEED + 1, numRuns: 300 });
  collectGarbage();
  const before = process.memoryUsage().heapUsed;

  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(request, async (req) => {
      const troubleBefore = registry.troubleAnswers;
      const response = await inject(req);
      statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
      const problem = problemWith(req, response, troubleBefore);
      if (problem !== undefined) throw new Error(`${req.method} ${req.path.slice(0, 120)}${req.query.slice(0, 80)}: ${problem}`);
    }),
    { seed: SEED, numRuns: 2_000, includeErrorInReport: true },
  );

  collectGarbage();
  const grownMiB = (process.memoryUsage().heapUsed - before) / 1024 ** 2;
  t.log(`statuses ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}; heap grew ${grownMiB.toFixed(1)} MiB`);
  t.true(grownMiB < 32, `heap grew ${grownMiB.toFixed(1)} MiB over 2,000 requests`);
  // The fuzz reached past the parsers: blobs and manifests were served, and refused.
  for (const status of [200, 206, 400, 401, 403, 404, 405, 416]) t.true((statuses.get(status) ?? 0) > 0, `no ${status} among ${JSON.stringify([...statuses])}`);

  const ping = await app.inject({ method: 'GET', url: '/v2/' });
  t.is(ping.statusCode, 200);
});

/** The payload of a chunked body (enough for the small bodies here). */
function decodeChunked(text: string): string {
  let out = '';
  let at = 0;
  for (;;) {
    const lineEnd = text.indexOf('\r\n', at);
    const size = lineEnd < 0 ? NaN : parseInt(text.slice(at, lineEnd), 16);
    if (!(size > 0)) return out;
    out += text.slice(lineEnd + 2, lineEnd + 2 + size);
    at = lineEnd + 2 + size + 2;
  }
}

/** Sends raw bytes on a fresh connection; resolves with what came back once the server closed it (or after `ms`). */
async function rawExchange(port: number, bytes: Buffer, ms = 1_000): Promise<Buffer> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, '127.0.0.1', () => socket.end(bytes));
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks));
    };
    const timer = setTimeout(done, ms);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('close', done);
    socket.on('error', done);
  });
}

test('raw bytes on a socket get an HTTP answer with an OCI body (or a closed connection), never a crash', async (t) => {
  t.timeout(60_000);
  const app = await buildProxyApp({ log: silentLogger(), registry, blobs: swarm });
  t.teardown(() => app.close());
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');

  const rawByte = fc.integer({ min: 0, max: 255 }).map((b) => String.fromCharCode(b));
  const rawText = fc.string({ unit: rawByte, maxLength: 40 });
  const requestLine = fc.oneof(
    fc.tuple(fc.constantFrom('GET', 'HEAD', 'POST', 'G\u0000T', 'get', ''), fc.oneof(paths, rawText.map((s) => `/v2/${s}`)), queries, fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2', 'HTTP/1.1 extra', '')).map(
      ([m, p, q, v]) => `${m} ${p}${q} ${v}`,
    ),
    rawText,
  );
  const headerLine = fc.oneof(
    fc.constantFrom('Host: x', 'Range: bytes=0-1', 'Accept: */*', 'Transfer-Encoding: chunked', 'Content-Length: 5', 'Content-Length: -1', 'Content-Length: 1, 2', `Authorization: Bearer ${'t'.repeat(8_000)}`, ': empty name', 'No colon'),
    fc.tuple(rawText, rawText).map(([n, v]) => `${n}: ${v}`),
  );
  const message = fc.oneof(
    {
      weight: 4,
      arbitrary: fc
        .tuple(requestLine, fc.boolean(), fc.array(headerLine, { maxLength: 6 }), rawText)
        .map(([line, host, hs, body]) => `${line}\r\n${[...(host ? ['Host: 127.0.0.1'] : []), ...hs, 'Connection: close'].join('\r\n')}\r\n\r\n${body}`),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')) },
  );

  const statuses = new Map<string, number>();
  let slowest = 0;
  await fc.assert(
    fc.asyncProperty(message, async (text) => {
      const started = Date.now();
      const reply = (await rawExchange(address.port, Buffer.from(text, 'latin1'))).toString('latin1');
      slowest = Math.max(slowest, Date.now() - started);
      const status = /^HTTP\/1\.[01] (\d{3}) /.exec(reply)?.[1];
      statuses.set(status ?? 'closed', (statuses.get(status ?? 'closed') ?? 0) + 1);
      if (reply === '') return; // connection closed without an answer: containerd moves on
      if (status === undefined) throw new Error(`not an HTTP answer: ${JSON.stringify(reply.slice(0, 100))}`);
      const code = Number(status);
      if ((code >= 300 && code <= 399) || code === 408 || code === 429) throw new Error(`status ${code}`);
      const headEnd = reply.indexOf('\r\n\r\n');
      const head = reply.slice(0, headEnd);
      const body = /\r\ntransfer-encoding: chunked/i.test(head) ? decodeChunked(reply.slice(headEnd + 4)) : reply.slice(headEnd + 4);
      // Node itself refuses an HTTP/1.1 request without Host (400, empty body) before any handler runs; containerd always sends Host.
      if (code === 400 && body === '' && !/\r\nhost:/i.test(text.slice(0, text.indexOf('\r\n\r\n') + 2))) return;
      if (code >= 400 && !text.startsWith('HEAD ')) {
        const parsed = JSON.parse(body) as { errors?: Array<{ code?: unknown; message?: unknown }> };
        if (!Array.isArray(parsed.errors) || typeof parsed.errors[0]?.code !== 'string' || typeof parsed.errors[0].message !== 'string') {
          throw new Error(`${code} without an OCI body: ${body.slice(0, 200)}`);
        }
      }
    }),
    { seed: SEED, numRuns: 300, includeErrorInReport: true },
  );
  t.log(`answers ${JSON.stringify(Object.fromEntries(statuses))}; slowest exchange ${slowest} ms`);
  const ping = await rawExchange(address.port, Buffer.from('GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
  t.regex(ping.toString(), /^HTTP\/1\.1 200 /);
});
