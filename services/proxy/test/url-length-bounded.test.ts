// Regression: the proxy documented a 2048-character bound on registry paths
// (the router's maxParamLength), but find-my-way does not apply it to the
// `/v2/*` wildcard: any URL up to Node's 16 KiB header limit reached the
// handlers. Now a URL (path and query) over MAX_URL_LENGTH gets 414 with an
// OCI body before any route runs.
import test from 'ava';
import { silentLogger, SwarmUnavailableError, type BlobProvider, type BlobStream } from '@shoal/core';
import { buildProxyApp, MAX_URL_LENGTH } from '../src/app.js';
import { FakeRegistryClient } from './helpers/fake-registry.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;
/** A FAKE swarm that has nothing. */
const emptySwarm: BlobProvider = {
  async openBlob(): Promise<BlobStream> {
    throw new SwarmUnavailableError('fake swarm: empty');
  },
};

test('URLs over MAX_URL_LENGTH get 414 NAME_INVALID; URLs within it reach the parser', async (t) => {
  t.is(MAX_URL_LENGTH, 2048);
  const app = await buildProxyApp({ log: silentLogger(), registry: new FakeRegistryClient([]), blobs: emptySwarm });
  t.teardown(() => app.close());
  const tooLong = [
    `/v2/${'a/'.repeat(1_100)}a/blobs/${DIGEST}?ns=registry.example`,
    `/v2/a/blobs/${DIGEST}?ns=registry.example&pad=${'p'.repeat(2_000)}`,
    `/${'x'.repeat(15_000)}`,
  ];
  for (const url of tooLong) {
    const response = await app.inject({ method: 'GET', url });
    t.is(response.statusCode, 414);
    t.is((response.json() as { errors: Array<{ code: string }> }).errors[0]?.code, 'NAME_INVALID');
  }
  const within = `/v2/${'a/'.repeat(900)}a/blobs/${DIGEST}?ns=registry.example`;
  t.true(within.length <= MAX_URL_LENGTH);
  const response = await app.inject({ method: 'GET', url: within });
  t.is(response.statusCode, 400);
  t.regex(response.body, /invalid repository name/);
});
