export * from './runtime.js';
export * from './commands/containerd-config.js';
export * from './commands/pull.js';
export * from './node-flags.js';
export { preheatImage, PreheatError, type PreheatOptions } from './commands/preheat.js';
