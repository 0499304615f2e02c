import test from 'ava';
import { HEADER, digestOf, isDigest, silentLogger } from '@shoal/core';
import { HttpBlobProvider } from '../src/index.js';
import { startFakePeer } from './helpers/fake-peer.js';
import { blobPath, fetchAll, startProxy, startUpstream } from './helpers/fixture.js';

test('the proxy serves blobs through HttpBlobProvider from a peer process, and falls back when the peer answers 503', async (t) => {
  const upstream = await startUpstream();
  t.teardown(() => upstream.stop());
  let healthy = true;
  // A FAKE peer: fetches the blob from the registry and serves it whole.
  const peer = await startFakePeer(async (req, res) => {
    if (!healthy) {
      res.writeHead(503).end();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://peer');
    const digest = url.pathname.split('/').pop() ?? '';
    if (!isDigest(digest)) throw new Error('bad digest');
    const auth = req.headers[HEADER.registryAuthorization];
    const upstreamResponse = await upstream.client.getBlob({
      registry: url.searchParams.get('registry') ?? '',
      repository: url.searchParams.get('repository') ?? '',
      digest,
      authorization: typeof auth === 'string' ? auth : undefined,
    });
    res.writeHead(200, { 'content-length': upstreamResponse.headers['content-length'] ?? '', [HEADER.source]: 'supernode' });
    upstreamResponse.body.pipe(res);
  });
  t.teardown(() => peer.close());
  const provider = new HttpBlobProvider({ log: silentLogger() }, { peerUrl: peer.url });
  t.teardown(() => provider.close());
  const proxy = await startProxy({ blobs: provider, plainHttpHosts: [upstream.registry.host] });
  t.teardown(() => proxy.close());
  const layer = upstream.image.layers[0];
  if (layer === undefined) throw new Error('image has no layer');

  const viaPeer = await fetchAll(`${proxy.url}${blobPath(upstream, layer.digest)}`);
  t.is(viaPeer.statusCode, 200);
  t.is(viaPeer.headers[HEADER.source], 'supernode');
  t.is(digestOf(viaPeer.body), layer.digest);

  healthy = false;
  const fallback = await fetchAll(`${proxy.url}${blobPath(upstream, layer.digest)}`);
  t.is(fallback.statusCode, 200);
  t.is(fallback.headers[HEADER.source], 'upstream');
  t.is(digestOf(fallback.body), layer.digest);
  t.is(peer.requests.length, 2);
});
