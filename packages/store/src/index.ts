export * from './types.js';
export { PieceStore, type PieceStoreComponents, type PieceStoreInit } from './piece-store.js';
