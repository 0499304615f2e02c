/**
 * The test image's shape, shared by bench:swarm (which builds and pushes it) and the
 * simulator (which models pulling it): "a few layers, one large", as fractions of S in
 * manifest order.
 */
export const LAYER_FRACTIONS: readonly number[] = [1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 16];

/** Layer sizes in bytes for an image of `totalBytes`, as bench:swarm builds it. */
export function layerSizes(totalBytes: number): number[] {
  return LAYER_FRACTIONS.map((f) => Math.round(totalBytes * f));
}
