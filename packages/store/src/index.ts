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
// A run of bytes written at increasing offsets in 1 MiB writes: the store's writer, for tools that write as it does.
export { PositionalWriter } from './positional-writer.js';
