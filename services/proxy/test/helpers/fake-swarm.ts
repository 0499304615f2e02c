/**
 * FAKE swarms for tests: BlobProvider implementations that stand in for the
 * local peer. None of them is a real swarm; each fakes one behaviour.
 */
import { Readable } from 'node:stream';
import { SwarmUnavailableError, type BlobProvider, type BlobRequest, type BlobSource, type BlobStream, type ByteRange } from '@shoal/core';
import type { RegistryClientApi } from '@shoal/registry-client';

export interface FakeSwarmCall {
  request: BlobRequest;
  range: ByteRange | undefined;
  signal: AbortSignal | undefined;
}

abstract class FakeSwarmBase implements BlobProvider {
  readonly calls: FakeSwarmCall[] = [];
  abstract open(call: FakeSwarmCall): Promise<BlobStream>;
  openBlob(request: BlobRequest, range: ByteRange | undefined, options: { signal?: AbortSignal } = {}): Promise<BlobStream> {
    const call = { request, range, signal: options.signal };
    this.calls.push(call);
    return this.open(call);
  }
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A FAKE swarm that fetches the whole blob from the registry itself and serves it (or the range) as `source`. */
export class FakeSwarmFromRegistry extends FakeSwarmBase {
  constructor(
    private readonly registry: RegistryClientApi,
    private readonly source: BlobSource = 'peer',
  ) {
    super();
  }

  async open({ request, range }: FakeSwarmCall): Promise<BlobStream> {
    const response = await this.registry.getBlob({
      registry: request.registry,
      repository: request.repository,
      digest: request.digest,
      authorization: request.registryAuthorization,
    });
    const bytes = await readAll(response.body);
    if (response.statusCode !== 200) throw new SwarmUnavailableError(`fake swarm: registry answered ${response.statusCode}`);
    const part = range === undefined ? bytes : bytes.subarray(range.start, range.end + 1);
    return { source: this.source, sizeBytes: bytes.length, body: Readable.from([part]) };
  }
}

/** A FAKE swarm that never has anything. */
export class FakeSwarmRejecting extends FakeSwarmBase {
  async open(): Promise<BlobStream> {
    throw new SwarmUnavailableError('fake swarm: no source for this blob');
  }
}

/** A FAKE swarm that never answers (and ignores its signal, like a wedged peer). */
export class FakeSwarmNeverAnswering extends FakeSwarmBase {
  open(): Promise<BlobStream> {
    return new Promise<BlobStream>(() => {});
  }
}

/**
 * A FAKE swarm that sends `bytesBeforeTrouble` bytes of `content`, then either
 * errors (`'error'`) or goes silent forever (`'stall'`).
 */
export class FakeSwarmTroubleMidStream extends FakeSwarmBase {
  constructor(
    private readonly content: Buffer,
    private readonly bytesBeforeTrouble: number,
    private readonly trouble: 'error' | 'stall',
  ) {
    super();
  }

  async open({ range }: FakeSwarmCall): Promise<BlobStream> {
    const part = range === undefined ? this.content : this.content.subarray(range.start, range.end + 1);
    let sent = false;
    const body = new Readable({
      read: () => {
        if (sent) return;
        sent = true;
        body.push(part.subarray(0, this.bytesBeforeTrouble));
        if (this.trouble === 'error') setTimeout(() => body.destroy(new Error('fake swarm: piece source died')), 20);
      },
    });
    return { source: 'peer', sizeBytes: this.content.length, body };
  }
}

/**
 * A FAKE swarm that trickles zero bytes forever, one small chunk every few
 * milliseconds (a big blob being served slowly), until it is destroyed.
 */
export class FakeSwarmEndless extends FakeSwarmBase {
  destroyed = false;

  async open({ request }: FakeSwarmCall): Promise<BlobStream> {
    let timer: NodeJS.Timeout | undefined;
    const body = new Readable({
      read() {
        timer ??= setInterval(() => body.push(Buffer.alloc(1024)), 5);
      },
      destroy: (err, done) => {
        clearInterval(timer);
        this.destroyed = true;
        done(err);
      },
    });
    return { source: 'peer', sizeBytes: request.sizeBytes, body };
  }
}

/**
 * A FAKE swarm whose blob waits `waitMs` before it starts (as one queued at the
 * supernode behind its registry's other fetches), reporting progress all along
 * (progressAt: now), then serves it from the registry like FakeSwarmFromRegistry.
 */
export class FakeSwarmQueued extends FakeSwarmFromRegistry {
  constructor(
    registry: RegistryClientApi,
    private readonly waitMs: number,
  ) {
    super(registry);
  }

  progressAt(): number {
    return Date.now();
  }

  override async open(call: FakeSwarmCall): Promise<BlobStream> {
    await new Promise((resolve) => setTimeout(resolve, this.waitMs));
    return super.open(call);
  }
}

/**
 * A FAKE swarm that sends the first `bytesBeforePause` bytes of `content`,
 * waits `pauseMs` (a reader waiting for a piece that comes after the node's
 * other blobs), then the rest; progress reported all along (progressAt: now).
 */
export class FakeSwarmPausing extends FakeSwarmBase {
  constructor(
    private readonly content: Buffer,
    private readonly bytesBeforePause: number,
    private readonly pauseMs: number,
  ) {
    super();
  }

  progressAt(): number {
    return Date.now();
  }

  async open(): Promise<BlobStream> {
    let step = 0;
    const body = new Readable({
      read: () => {
        if (step === 0) body.push(this.content.subarray(0, this.bytesBeforePause));
        else if (step === 1) setTimeout(() => body.push(this.content.subarray(this.bytesBeforePause)), this.pauseMs);
        else if (step === 2) body.push(null);
        step++;
      },
    });
    return { source: 'peer', sizeBytes: this.content.length, body };
  }
}
