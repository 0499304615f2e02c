export { buildProxyApp, type ProxyAppInit, type ProxyComponents } from './app.js';
export {
  resolveProxyConfig,
  DEFAULT_FIRST_BYTE_TIMEOUT_MS,
  DEFAULT_BODY_IDLE_TIMEOUT_MS,
  DEFAULT_MANIFEST_CACHE_BYTES,
  MAX_CACHED_MANIFEST_BYTES,
  ACCESS_CHECK_TTL_MS,
  MAX_ACCESS_CHECK_ENTRIES,
  type ProxyInit,
  type ProxyConfig,
} from './config.js';
export {
  HttpBlobProvider,
  DEFAULT_PEER_CONNECTIONS,
  DEFAULT_PEER_CONNECT_TIMEOUT_MS,
  DEFAULT_PEER_HEADERS_TIMEOUT_MS,
  DEFAULT_PEER_BODY_TIMEOUT_MS,
  type HttpBlobProviderInit,
} from './http-blob-provider.js';
export { createProxyMetrics, type ProxyMetrics } from './plugins/metrics.js';
