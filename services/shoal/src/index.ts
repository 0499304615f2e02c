export * from './runtime.js';
export * from './commands/containerd-config.js';
export * from './commands/pull.js';
export * from './node-flags.js';
export { DEFAULT_PEER_LISTEN, DEFAULT_PEER_LISTEN_OPEN, DEFAULT_SUPERNODE_LISTEN, DEFAULT_SUPERNODE_LISTEN_OPEN, isLoopbackHost, resolveListen } from './flags.js';
export { preheatImage, type PreheatOptions } from './commands/preheat.js';
export * from './errors.js';
