export * from './app.js';
export * from './peer.js';
export * from './download.js';
export * from './supernode-client.js';
export * from './supernode-session.js';
