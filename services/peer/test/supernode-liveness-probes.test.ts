import test from 'ava';
import { silentLogger, type Digest } from '@shoal/core';
import { LIVENESS_GRACE_MS, SupernodeClient } from '../src/index.js';
import { stubServer } from './stub-server.js';

const DIGEST = `sha256:${'c'.repeat(64)}` as Digest;
const HOLD_MS = 2.5 * LIVENESS_GRACE_MS;

/** A supernode whose schedule answers take HOLD_MS (a long-poll on a slow link); counts liveness probes. */
async function slowSupernode(): Promise<{ url: string; probes: () => number; close: () => Promise<void> }> {
  let probes = 0;
  const server = await stubServer((req, res) => {
    if (req.url === '/readyz') {
      probes++;
      res.end('ok');
      return;
    }
    req.resume();
    setTimeout(() => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ assignments: [], seedComplete: false }));
    }, HOLD_MS);
  });
  return { ...server, probes: () => probes };
}

test('calls waiting at once on one supernode share its liveness probe', async (t) => {
  const sn = await slowSupernode();
  t.teardown(sn.close);
  const client = new SupernodeClient({ log: silentLogger() }, { supernodeUrls: [sn.url] });
  const answers = await Promise.all(Array.from({ length: 6 }, () => client.schedule(sn.url, DIGEST, { peerId: 'n1', limit: 1 })));
  t.is(answers.length, 6);
  // One probe after each grace while they wait (two or three), not one per call (twelve).
  t.true(sn.probes() >= 1 && sn.probes() <= 3, `${sn.probes()} probes`);
});

test('a supernode that sent something within the grace is not probed', async (t) => {
  const sn = await slowSupernode();
  t.teardown(sn.close);
  const client = new SupernodeClient({ log: silentLogger() }, { supernodeUrls: [sn.url] });
  // Piece bytes arriving from it meanwhile (Download calls heard on every chunk from the seed).
  const bytes = setInterval(() => client.heard(sn.url), LIVENESS_GRACE_MS / 5);
  t.teardown(() => clearInterval(bytes));
  await client.schedule(sn.url, DIGEST, { peerId: 'n1', limit: 1 });
  t.is(sn.probes(), 0);
});
