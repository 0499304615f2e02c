import fp from 'fastify-plugin';
import type { BlobProvider, Logger } from '@shoal/core';
import type { RegistryClientApi } from '@shoal/registry-client';
import type { ProxyConfig } from '../config.js';
import { MAX_CACHED_MANIFEST_BYTES } from '../config.js';
import { ManifestCache } from '../manifest-cache.js';
import { createOutageMemory, type OutageMemory } from '../outage-memory.js';
import { Upstream } from '../upstream.js';

/** What the proxy's routes share: configuration, the registry, the swarm and caches. */
export interface ProxyContext {
  readonly config: ProxyConfig;
  readonly log: Logger;
  readonly upstream: Upstream;
  readonly blobs: BlobProvider;
  readonly manifests: ManifestCache;
  /** What this proxy remembers to keep answering while a registry is down (tags, grants, challenges). */
  readonly outage: OutageMemory;
  /** True from the end of boot until close starts. */
  readonly ready: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    shoalProxy: ProxyContext;
  }
}

export interface ContextPluginOptions {
  config: ProxyConfig;
  log: Logger;
  registry: RegistryClientApi;
  blobs: BlobProvider;
}

/**
 * Decorates `shoalProxy`. The registry client and the blob provider belong to
 * whoever built them (the CLI) and are not closed here.
 */
export const contextPlugin = fp<ContextPluginOptions>(
  async (app, options) => {
    let ready = false;
    const context: ProxyContext = {
      config: options.config,
      log: options.log,
      upstream: new Upstream(
        { log: options.log.child({ component: 'upstream' }), registry: options.registry },
        { accessCheckTtlMs: options.config.accessCheckTtlMs, maxAccessCheckEntries: options.config.maxAccessCheckEntries },
      ),
      blobs: options.blobs,
      manifests: new ManifestCache({ maxBytes: options.config.manifestCacheBytes, maxEntryBytes: MAX_CACHED_MANIFEST_BYTES }),
      outage: createOutageMemory(options.config),
      get ready() {
        return ready;
      },
    };
    app.decorate('shoalProxy', context);
    app.addHook('onReady', async () => {
      ready = true;
    });
    app.addHook('preClose', async () => {
      ready = false;
    });
  },
  { name: 'shoal-proxy-context', fastify: '5.x' },
);
