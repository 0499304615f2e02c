/**
 * Regression: `shoal status` cast the supernode's answer to the shape it
 * expected. An answer of another shape (another service on that port, a
 * supernode of another version) crashed with "Cannot read properties of
 * undefined" or printed `undefined` counts. The answer is now parsed with the
 * status wire schema: a malformed one is a StatusError that says so.
 */
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { silentLogger } from '@shoal/core';
import { fetchSupernodeStatus, formatStatus } from '../src/commands/status.js';
import { StatusError } from '../src/errors.js';
import { startSupernode } from '../src/runtime.js';

/** Not a supernode: a server on port 0 answering every request 200 with `body`. */
async function answering(body: string): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(body));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

test('a status of the wrong shape is a StatusError naming what is wrong', async (t) => {
  const { url, server } = await answering(JSON.stringify({ peers: 'none', blobs: { count: 1 } }));
  t.teardown(() => server.close());
  const err = await t.throwsAsync(fetchSupernodeStatus({ supernodeUrl: url, token: undefined }), { instanceOf: StatusError });
  t.is(err?.code, 'SHOAL_STATUS_FAILED');
  t.regex(err?.message ?? '', /malformed status/);
  t.regex(err?.message ?? '', /invalid supernode status: \/generatedAt Expected required property/);
});

test('an answer that is not JSON is a StatusError that shows its beginning', async (t) => {
  const { url, server } = await answering('<html>a login page</html>');
  t.teardown(() => server.close());
  const err = await t.throwsAsync(fetchSupernodeStatus({ supernodeUrl: url, token: undefined }), { instanceOf: StatusError });
  t.regex(err?.message ?? '', /not JSON: "<html>a login page/);
});

test("a real supernode's status parses and prints", async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'shoal-status-'));
  const supernode = await startSupernode(silentLogger(), { listen: '127.0.0.1:0', dataDir, plainHttpHosts: [], token: 'status-test-token' });
  t.teardown(async () => {
    await supernode.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  const status = await fetchSupernodeStatus({ supernodeUrl: supernode.url, token: 'status-test-token' });
  t.deepEqual(status.peers, []);
  t.is(formatStatus(supernode.url, status), `supernode ${supernode.url}: 0 peer(s), 0 blob(s) cached (0.0 MiB), 0 downloading\n`);
  // Without the token the supernode refuses, and the error carries its answer.
  const err = await t.throwsAsync(fetchSupernodeStatus({ supernodeUrl: supernode.url, token: undefined }), { instanceOf: StatusError });
  t.regex(err?.message ?? '', /answered 401/);
});
