import test from 'ava';
import { SwarmUnavailableError, digestOf, silentLogger, type BlobRequest } from '@shoal/core';
import { deadPort } from '@shoal/testkit';
import { HttpBlobProvider } from '../src/index.js';
import { startFakePeer } from './helpers/fake-peer.js';

const content = Buffer.alloc(50_000, 7);
const request: BlobRequest = { registry: 'r.example', repository: 'a/b', digest: digestOf(content), sizeBytes: content.length };

test('HttpBlobProvider rejects (so the proxy falls back) on non-2xx, wrong ranges and lengths, an unreachable peer; a short body errors', async (t) => {
  let mode: 'not-found' | 'ignore-range' | 'wrong-length' | 'short' = 'not-found';
  const peer = await startFakePeer((_req, res) => {
    switch (mode) {
      case 'not-found':
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"BLOB_UNKNOWN","message":"no"}]}');
        return;
      case 'ignore-range':
      case 'wrong-length':
        res.writeHead(200, { 'content-length': String(mode === 'wrong-length' ? content.length - 1 : content.length) });
        res.end(mode === 'wrong-length' ? content.subarray(1) : content);
        return;
      case 'short':
        res.writeHead(200, { 'transfer-encoding': 'chunked' });
        res.end(content.subarray(0, 1000)); // a clean end, 49 000 bytes short
        return;
    }
  });
  t.teardown(() => peer.close());
  const provider = new HttpBlobProvider({ log: silentLogger() }, { peerUrl: peer.url });
  t.teardown(() => provider.close());

  await t.throwsAsync(provider.openBlob(request, undefined), { instanceOf: SwarmUnavailableError });
  mode = 'ignore-range';
  await t.throwsAsync(provider.openBlob(request, { start: 0, end: 9 }), { instanceOf: SwarmUnavailableError });
  mode = 'wrong-length';
  await t.throwsAsync(provider.openBlob(request, undefined), { instanceOf: SwarmUnavailableError });

  mode = 'short';
  const short = await provider.openBlob(request, undefined);
  await t.throwsAsync(async () => {
    for await (const chunk of short.body) void chunk;
  });

  const port = await deadPort();
  const nowhere = new HttpBlobProvider({ log: silentLogger() }, { peerUrl: `http://127.0.0.1:${port}` });
  t.teardown(() => nowhere.close());
  await t.throwsAsync(nowhere.openBlob(request, undefined), { instanceOf: SwarmUnavailableError });

  // An aborted signal stops the request.
  const hanging = await startFakePeer(() => new Promise<void>(() => {}));
  t.teardown(() => hanging.close());
  const slow = new HttpBlobProvider({ log: silentLogger() }, { peerUrl: hanging.url });
  t.teardown(() => slow.close());
  const controller = new AbortController();
  const pending = slow.openBlob(request, undefined, { signal: controller.signal });
  setTimeout(() => controller.abort(new Error('client gone')), 50);
  await t.throwsAsync(pending);
});
