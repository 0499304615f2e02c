export * from './app.js';
export * from './blob-tasks.js';
export * from './peer-table.js';
export { PEERS_WS_PATH } from './routes/peers-ws.js';
export * from './scheduler/index.js';
export * from './peer-links.js';
export * from './controller/index.js';
export * from './registration.js';
export * from './errors.js';
