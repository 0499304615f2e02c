/**
 * Test fixture: a real docker-registry with an image pushed to it, and the
 * proxy in front of it (listening on 127.0.0.1, port 0).
 */
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { request, type Dispatcher } from 'undici';
import type { FastifyInstance } from 'fastify';
import { silentLogger, type BlobProvider, type Digest } from '@shoal/core';
import { RegistryClient, type RegistryClientApi } from '@shoal/registry-client';
import {
  buildImage,
  makeTempDir,
  pushImage,
  removeTempDir,
  requireTools,
  startRegistry,
  type BuiltImage,
  type Credentials,
  type LayerSpec,
  type Platform,
  type RunningRegistry,
} from '@shoal/testkit';
import { buildProxyApp, type ProxyAppInit } from '../../src/index.js';

export interface Upstream {
  registry: RunningRegistry;
  image: BuiltImage;
  repository: string;
  tag: string;
  credentials: Credentials | undefined;
  /** A registry client that reaches this registry (plain HTTP). */
  client: RegistryClientApi;
  stop(): Promise<void>;
}

export interface UpstreamOptions {
  layers?: LayerSpec[];
  platforms?: Platform[];
  htpasswd?: Credentials;
  repository?: string;
  tag?: string;
}

/** Starts docker-registry and pushes a freshly built image to it. */
export async function startUpstream(options: UpstreamOptions = {}): Promise<Upstream> {
  await requireTools(['docker-registry', 'skopeo', ...(options.htpasswd === undefined ? [] : (['htpasswd'] as const))]);
  const dir = await makeTempDir('proxy-test-image');
  const registry = await startRegistry(options.htpasswd === undefined ? {} : { htpasswd: options.htpasswd });
  const repository = options.repository ?? 'test/app';
  const tag = options.tag ?? 'v1';
  const image = await buildImage({
    dir: join(dir, 'layout'),
    tag,
    layers: options.layers ?? [{ sizeBytes: 300_000, seed: 'proxy-test-layer' }],
    gzipLevel: 0,
    ...(options.platforms === undefined ? {} : { platforms: options.platforms }),
  });
  await pushImage({
    layoutDir: image.layoutDir,
    tag,
    registry: registry.host,
    repository,
    ...(options.htpasswd === undefined ? {} : { credentials: options.htpasswd }),
  });
  const client = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: [registry.host], maxRetries: 0 });
  return {
    registry,
    image,
    repository,
    tag,
    credentials: options.htpasswd,
    client,
    async stop() {
      await client.close();
      await registry.stop();
      await removeTempDir(dir);
    },
  };
}

export interface RunningProxy {
  app: FastifyInstance;
  /** `http://127.0.0.1:PORT` */
  url: string;
  metrics: Registry;
  registryClient: RegistryClientApi;
  close(): Promise<void>;
}

/** Builds the proxy app with the given swarm and listens on 127.0.0.1:0. */
export async function startProxy(options: { blobs: BlobProvider; plainHttpHosts: string[]; init?: ProxyAppInit; maxRetries?: number }): Promise<RunningProxy> {
  const registryClient = new RegistryClient({ log: silentLogger() }, { plainHttpHosts: options.plainHttpHosts, maxRetries: options.maxRetries ?? 0 });
  const metrics = new Registry();
  const app = await buildProxyApp({ log: silentLogger(), registry: registryClient, blobs: options.blobs, metrics }, options.init ?? {});
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy did not listen on a TCP port');
  return {
    app,
    url: `http://127.0.0.1:${address.port}`,
    metrics,
    registryClient,
    async close() {
      await app.close();
      await registryClient.close();
    },
  };
}

/** The path containerd requests for a blob of `repository` through a mirror. */
export function blobPath(upstream: Upstream, digest: Digest | string): string {
  return `/v2/${upstream.repository}/blobs/${digest}?ns=${encodeURIComponent(upstream.registry.host)}`;
}

export function manifestPath(upstream: Upstream, reference: string): string {
  return `/v2/${upstream.repository}/manifests/${reference}?ns=${encodeURIComponent(upstream.registry.host)}`;
}

export interface FetchedResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: Buffer;
}

function flatHeaders(headers: Dispatcher.ResponseData['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** One HTTP request to 127.0.0.1 with the whole body read (rejects when the body is cut). */
export async function fetchAll(url: string, options: { method?: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE'; headers?: Record<string, string> } = {}): Promise<FetchedResponse> {
  const response = await request(url, { method: options.method ?? 'GET', headers: options.headers ?? {} });
  const body = Buffer.from(await response.body.arrayBuffer());
  return { statusCode: response.statusCode, headers: flatHeaders(response.headers), body };
}

/** The bytes of a blob in the image's OCI layout (what the registry holds). */
export async function layoutBlob(upstream: Upstream, digest: Digest): Promise<Buffer> {
  const { readFile } = await import('node:fs/promises');
  return readFile(join(upstream.image.layoutDir, 'blobs', 'sha256', digest.slice(7)));
}

export function basicAuth(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}

/** The value of a counter in a prom-client registry for exactly these labels (0 when absent). */
export async function metricValue(metrics: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const metric = metrics.getSingleMetric(name);
  if (metric === undefined) return 0;
  const data = await metric.get();
  const match = data.values.find((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want));
  return match?.value ?? 0;
}

export interface CountedResponse {
  statusCode: number | undefined;
  headers: Record<string, string | string[] | undefined>;
  /** Body bytes that arrived. */
  received: number;
  /** The body ended cleanly (false: the connection was cut). */
  complete: boolean;
}

/**
 * A GET with node:http that reports how many body bytes arrived and whether
 * the body ended cleanly or the connection was cut (what containerd sees).
 */
export async function fetchCounting(url: string, headers: Record<string, string> = {}): Promise<CountedResponse> {
  const { request } = await import('node:http');
  return new Promise<CountedResponse>((resolve) => {
    let received = 0;
    let statusCode: number | undefined;
    let responseHeaders: CountedResponse['headers'] = {};
    const req = request(url, { headers }, (res) => {
      statusCode = res.statusCode;
      responseHeaders = res.headers;
      res.on('data', (chunk: Buffer) => {
        received += chunk.length;
      });
      res.on('end', () => resolve({ statusCode, headers: responseHeaders, received, complete: true }));
      res.on('error', () => resolve({ statusCode, headers: responseHeaders, received, complete: false }));
    });
    req.on('error', () => resolve({ statusCode, headers: responseHeaders, received, complete: false }));
    req.end();
  });
}
