export * from './types.js';
export * from './client.js';
export * from './parse-www-authenticate.js';
export * from './parse-retry-after.js';
export * from './parse-token-response.js';
export * from './token-cache.js';
export * from './transport-failure.js';
