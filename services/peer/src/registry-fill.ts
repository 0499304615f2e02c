import { pipeline, Transform, type Readable } from 'node:stream';
import { destroyQuietly, pieceLayout, SwarmUnavailableError, type Digest, type Logger, type PieceLayout } from '@shoal/core';
import type { RegistryClientApi } from '@shoal/registry-client';
import type { PieceStoreApi } from '@shoal/store';

/**
 * The node's own back-to-source, for when no supernode answers: the blob is
 * streamed from the registry into the local store (pieces already held are
 * not written again; every piece is hashed and the whole blob checked against
 * its digest), and served onward from here as usual.
 */
export class RegistryFill {
  readonly digest: Digest;
  readonly layout: PieceLayout;
  readonly done: Promise<void>;
  readonly bytesFrom = { peer: 0, supernode: 0, upstream: 0 };
  private readonly abort = new AbortController();

  constructor(
    components: { log: Logger; store: PieceStoreApi; registry: RegistryClientApi; onProgress?: (() => void) | undefined },
    init: { digest: Digest; registry: string; repository: string; sizeBytes: number; authorization: string | undefined; onDone: () => void },
  ) {
    this.digest = init.digest;
    this.layout = pieceLayout(init.sizeBytes);
    const log = components.log.child({ module: 'registry-fill', digest: init.digest });
    this.done = (async () => {
      const startedAt = Date.now();
      await components.store.begin(init.digest, init.sizeBytes);
      const response = await components.registry.getBlob({
        registry: init.registry,
        repository: init.repository,
        digest: init.digest,
        authorization: init.authorization,
        signal: this.abort.signal,
      });
      if (response.statusCode !== 200) {
        destroyQuietly(response.body);
        throw new SwarmUnavailableError(`registry answered ${response.statusCode} for ${init.digest}`);
      }
      log.warn({ registry: init.registry }, 'no supernode answered: this node fetches the blob from the registry itself');
      const counted = components.onProgress === undefined ? response.body : tapped(response.body, components.onProgress);
      await components.store.ingest(init.digest, init.sizeBytes, counted, { signal: this.abort.signal });
      this.bytesFrom.upstream = init.sizeBytes;
      log.info({ durationMs: Date.now() - startedAt }, 'blob fetched from the registry by this node');
    })().finally(init.onDone);
    this.done.catch((err: unknown) => {
      if (!this.abort.signal.aborted) this.abort.abort(err);
    });
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  attach(): { setCursor: (piece: number) => void; detach: () => void } {
    // One sequential stream: readers follow it, nothing to steer.
    return { setCursor: () => undefined, detach: () => undefined };
  }

  cancel(reason: Error): void {
    this.abort.abort(reason);
  }
}

/** `body`'s bytes, telling `onProgress` as they arrive (errors pass through). */
function tapped(body: Readable, onProgress: () => void): Readable {
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done): void {
      onProgress();
      done(null, chunk);
    },
  });
  pipeline(body, tap, () => undefined);
  return tap;
}
