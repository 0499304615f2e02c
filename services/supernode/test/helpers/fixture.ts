/**
 * A real supernode (buildSupernodeApp with a real PieceStore in a temp dir)
 * in front of a FAKE registry client that never touches the network: it
 * holds the blobs it was given (200, or 206 for a Range) and answers 404 to
 * everything else. Listens on 127.0.0.1, port 0.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { silentLogger, type Digest } from '@shoal/core';
import type { BlobFetchOptions, RegistryClientApi, RegistryRequest, RegistryResponse } from '@shoal/registry-client';
import { PieceStore } from '@shoal/store';
import { buildSupernodeApp, type SupernodeApp, type SupernodeInit } from '../../src/index.js';

export function digestOf(bytes: Buffer): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;
}

/** A FAKE registry: the given blobs, and 404 for anything else. */
export class FakeRegistryClient implements RegistryClientApi {
  private readonly blobs = new Map<string, Buffer>();
  calls = 0;

  constructor(contents: readonly Buffer[]) {
    for (const content of contents) this.blobs.set(digestOf(content), content);
  }

  baseUrl(registry: string): string {
    return `https://${registry}`;
  }

  async request(_request: RegistryRequest): Promise<RegistryResponse> {
    this.calls++;
    return { statusCode: 404, headers: {}, body: Readable.from([]) };
  }

  async headBlob(options: BlobFetchOptions): Promise<RegistryResponse> {
    this.calls++;
    const content = this.blobs.get(options.digest);
    if (content === undefined) return { statusCode: 404, headers: {}, body: Readable.from([]) };
    return { statusCode: 200, headers: { 'content-length': String(content.length) }, body: Readable.from([]) };
  }

  async getBlob(options: BlobFetchOptions): Promise<RegistryResponse> {
    this.calls++;
    const content = this.blobs.get(options.digest);
    if (content === undefined) return { statusCode: 404, headers: {}, body: Readable.from([]) };
    return { statusCode: 200, headers: { 'content-length': String(content.length) }, body: Readable.from([content]) };
  }

  async close(): Promise<void> {}
}

export interface RunningSupernode extends SupernodeApp {
  url: string;
  port: number;
  registry: FakeRegistryClient;
  store: PieceStore;
  close(): Promise<void>;
}

export async function startSupernode(options: { blobs: readonly Buffer[]; init?: Partial<SupernodeInit> }): Promise<RunningSupernode> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-supernode-fuzz-'));
  const log = silentLogger();
  const store = await PieceStore.open({ log }, { dir });
  const registry = new FakeRegistryClient(options.blobs);
  const supernode = await buildSupernodeApp({ log, store, registry }, { token: undefined, ...options.init });
  await supernode.app.listen({ port: 0, host: '127.0.0.1' });
  const address = supernode.app.server.address();
  if (address === null || typeof address === 'string') throw new Error('supernode did not listen on a TCP port');
  return {
    ...supernode,
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    registry,
    store,
    async close() {
      await supernode.app.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
