export * from './processes.js';
export * from './image-builder.js';
export * from './registry.js';
export * from './require-tools.js';
export * from './containerd.js';
export * from './token-server.js';
export * from './slow-clients.js';
export * from './path-encodings.js';
