export * from './ops.js';
export * from './token.js';
export * from './errors.js';
export * from './error-rendering.js';
export * from './server-timeouts.js';
export * from './chunk-sender.js';
export * from './token-file.js';
export * from './metrics.js';
