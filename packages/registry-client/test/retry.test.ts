import test from 'ava';
import { digestOf, silentLogger, UpstreamError } from '@shoal/core';
import { RegistryClient } from '../src/index.js';
import { closedPort, CountingAgent, readAll, startServer } from './helpers.js';

const digest = digestOf('retried');

test('503 twice, then 200: the 200 is returned', async (t) => {
  let n = 0;
  const registry = await startServer((_req, res) => {
    n++;
    if (n <= 2) res.writeHead(503).end('busy');
    else res.end('retried');
  });
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: [registry.host], retryBaseMs: 5 });
  t.teardown(async () => {
    await client.close();
    await registry.close();
  });
  const res = await client.getBlob({ registry: registry.host, repository: 'a/b', digest });
  t.is(res.statusCode, 200);
  t.is((await readAll(res.body)).toString(), 'retried');
  t.is(registry.requests.length, 3);
});

test('Retry-After (seconds) is honoured', async (t) => {
  let n = 0;
  const registry = await startServer((_req, res) => {
    n++;
    if (n === 1) res.writeHead(429, { 'retry-after': '1' }).end();
    else res.end('ok');
  });
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: [registry.host], retryBaseMs: 1 });
  t.teardown(async () => {
    await client.close();
    await registry.close();
  });
  const started = Date.now();
  const res = await client.getBlob({ registry: registry.host, repository: 'a/b', digest });
  const elapsed = Date.now() - started;
  t.is(res.statusCode, 200);
  await readAll(res.body);
  t.true(elapsed >= 950, `waited only ${elapsed} ms`);
  t.true(elapsed < 5000, `waited ${elapsed} ms`);
});

test('still 503 after all retries: the last 503 is returned as is', async (t) => {
  const registry = await startServer((_req, res) => {
    res.writeHead(503, { 'content-type': 'text/plain' }).end('still busy');
  });
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: [registry.host], retryBaseMs: 1, maxRetries: 2 });
  t.teardown(async () => {
    await client.close();
    await registry.close();
  });
  const res = await client.getBlob({ registry: registry.host, repository: 'a/b', digest });
  t.is(res.statusCode, 503);
  t.is((await readAll(res.body)).toString(), 'still busy');
  t.is(registry.requests.length, 3);
});

test('a Retry-After beyond the cap is not waited for', async (t) => {
  const registry = await startServer((_req, res) => {
    res.writeHead(429, { 'retry-after': '3600' }).end();
  });
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: [registry.host] });
  t.teardown(async () => {
    await client.close();
    await registry.close();
  });
  const res = await client.getBlob({ registry: registry.host, repository: 'a/b', digest });
  t.is(res.statusCode, 429);
  t.is(res.headers['retry-after'], '3600');
  await readAll(res.body);
  t.is(registry.requests.length, 1);
});

test('ECONNREFUSED: retried, then UpstreamError 502 with the cause', async (t) => {
  const port = await closedPort();
  const agent = new CountingAgent();
  const client = new RegistryClient({ log: silentLogger(), dispatcher: agent }, { plainHttpHosts: [`127.0.0.1:${port}`], retryBaseMs: 5, maxRetries: 2 });
  t.teardown(async () => {
    await client.close();
    await agent.close();
  });
  const err = await t.throwsAsync(client.getBlob({ registry: `127.0.0.1:${port}`, repository: 'a/b', digest }), { instanceOf: UpstreamError });
  t.is(err?.statusCode, 502);
  t.is(err?.upstreamStatus, undefined);
  t.is((err?.cause as { code?: string } | undefined)?.code, 'ECONNREFUSED');
  t.is(agent.dispatched, 3);
});

test('an abort stops the retry loop at once with the signal reason', async (t) => {
  const registry = await startServer((_req, res) => {
    res.writeHead(503, { 'retry-after': '20' }).end();
  });
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: [registry.host] });
  t.teardown(async () => {
    await client.close();
    await registry.close();
  });
  const controller = new AbortController();
  const reason = new Error('client went away');
  setTimeout(() => controller.abort(reason), 100);
  const started = Date.now();
  const err = await t.throwsAsync(client.getBlob({ registry: registry.host, repository: 'a/b', digest, signal: controller.signal }));
  t.is(err, reason);
  t.true(Date.now() - started < 2000);
  t.is(registry.requests.length, 1);
});
