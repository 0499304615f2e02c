// A supernode of a Shoal version with another piece layout (or a broken one)
// describes a blob in pieces this node would cut differently. The node must not
// take that description: piece i would mean two things in one store. It refuses
// the supernode with a message that says why, and (with no other supernode) the
// download is reported unavailable, which sends the proxy to the registry.
import test from 'ava';
import { pieceLayout, silentLogger, SwarmUnavailableError, type Digest } from '@shoal/core';
import { SupernodeClient } from '../src/index.js';
import { stubServer } from './stub-server.js';

const DIGEST = `sha256:${'e'.repeat(64)}` as Digest;
const SIZE = 64 * 1024 * 1024;

/** A stub supernode (not the real one, which always uses this version's layout): its task answer describes the blob with `pieceSizeBytes`. */
async function supernodeWithPieceSize(pieceSizeBytes: number): Promise<{ url: string; close: () => Promise<void> }> {
  const pieceCount = Math.ceil(SIZE / pieceSizeBytes);
  return stubServer((req, res) => {
    req.resume();
    if (req.url === '/readyz') {
      res.end('ok');
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ digest: DIGEST, sizeBytes: SIZE, pieceSizeBytes, pieceCount, pieceSha256: Array.from({ length: pieceCount }, () => null), complete: false }));
  });
}

const request = { digest: DIGEST, registry: 'registry.test', repository: 'app', sizeBytes: SIZE, peerId: 'n1' };

test('a supernode whose piece layout differs from this node’s is refused, saying why', async (t) => {
  const own = pieceLayout(SIZE).pieceSizeBytes;
  const sn = await supernodeWithPieceSize(own * 2);
  t.teardown(sn.close);
  const client = new SupernodeClient({ log: silentLogger() }, { supernodeUrls: [sn.url] });
  t.teardown(() => client.close());
  const err = await t.throwsAsync(client.createTask(request, undefined), { instanceOf: SwarmUnavailableError });
  t.regex(err?.message ?? '', /another piece layout/);
  t.regex(err?.message ?? '', new RegExp(`${SIZE / (own * 2)} pieces of ${own * 2} bytes`));
});

test('a supernode with this node’s layout is taken', async (t) => {
  const sn = await supernodeWithPieceSize(pieceLayout(SIZE).pieceSizeBytes);
  t.teardown(sn.close);
  const client = new SupernodeClient({ log: silentLogger() }, { supernodeUrls: [sn.url] });
  t.teardown(() => client.close());
  const { info, supernodeUrl } = await client.createTask(request, undefined);
  t.is(supernodeUrl, sn.url);
  t.is(info.pieceCount, pieceLayout(SIZE).pieceCount);
});
