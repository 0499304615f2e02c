export * from './types.js';
export {
  DEFAULT_FRESH_PIECE_BYTES,
  DEFAULT_HIGH_WATERMARK,
  DEFAULT_LOW_WATERMARK,
  DEFAULT_PARTIAL_IDLE_MS,
  PieceStore,
  type PieceStoreComponents,
  type PieceStoreInit,
} from './piece-store.js';
