import test from 'ava';
import { HEADER, digestOf, silentLogger, type BlobRequest } from '@shoal/core';
import { HttpBlobProvider } from '../src/index.js';
import { startFakePeer } from './helpers/fake-peer.js';

const content = Buffer.from('0123456789abcdefghij'.repeat(100));
const digest = digestOf(content);

test('HttpBlobProvider asks the peer for the blob signed (never the token), registry credential and range, and reads x-shoal-source', async (t) => {
  const peer = await startFakePeer((req, res) => {
    const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (range === null) {
      res.writeHead(200, { 'content-length': String(content.length), [HEADER.source]: 'local' });
      res.end(content);
      return;
    }
    const start = Number(range[1]);
    const end = Number(range[2]);
    res.writeHead(206, { 'content-length': String(end - start + 1), 'content-range': `bytes ${start}-${end}/${content.length}`, [HEADER.source]: 'supernode' });
    res.end(content.subarray(start, end + 1));
  });
  t.teardown(() => peer.close());
  const provider = new HttpBlobProvider({ log: silentLogger() }, { peerUrl: `${peer.url}/`, token: 'cluster-secret' });
  t.teardown(() => provider.close());
  const request: BlobRequest = {
    registry: 'registry.example:5000',
    repository: 'team/app',
    digest,
    sizeBytes: content.length,
    registryAuthorization: 'Bearer abc',
  };

  const whole = await provider.openBlob(request, undefined);
  t.is(whole.source, 'local');
  t.is(whole.sizeBytes, content.length);
  const chunks: Buffer[] = [];
  for await (const chunk of whole.body) chunks.push(chunk as Buffer);
  t.true(Buffer.concat(chunks).equals(content));

  const first = peer.requests[0];
  if (first === undefined) throw new Error('no request reached the peer');
  const url = new URL(first.url, peer.url);
  t.is(url.pathname, `/api/v1/blobs/${digest}`);
  t.is(url.searchParams.get('registry'), 'registry.example:5000');
  t.is(url.searchParams.get('repository'), 'team/app');
  t.is(url.searchParams.get('size'), String(content.length));
  t.is(first.headers[HEADER.token], undefined, 'the token itself is never sent');
  t.regex(String(first.headers[HEADER.signature]), /^v1;kid=[0-9a-f]{16};ts=\d+;nonce=[\w-]{22};aud=peer\/127\.0\.0\.1:\d+;sig=[\w-]{43}$/);
  t.is(first.headers[HEADER.registryAuthorization], 'Bearer abc');
  t.is(first.headers.range, undefined);

  const part = await provider.openBlob(request, { start: 10, end: 29 });
  t.is(part.source, 'supernode');
  const partChunks: Buffer[] = [];
  for await (const chunk of part.body) partChunks.push(chunk as Buffer);
  t.true(Buffer.concat(partChunks).equals(content.subarray(10, 30)));
  t.is(peer.requests[1]?.headers.range, 'bytes=10-29');
});
