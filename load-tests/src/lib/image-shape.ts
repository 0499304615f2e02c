/**
 * The test image's shape, shared by bench:swarm (which builds and pushes it) and the
 * simulator (which models pulling it): "a few layers, one large", as fractions of S in
 * manifest order.
 */
export const LAYER_FRACTIONS: readonly number[] = [1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 16];

/**
 * Layer sizes in bytes for an image of `totalBytes`, as bench:swarm builds it: the
 * fractions above, or `count` layers of equal size (`--layers`; the last takes the
 * remainder).
 */
export function layerSizes(totalBytes: number, count?: number): number[] {
  if (count === undefined) return LAYER_FRACTIONS.map((f) => Math.round(totalBytes * f));
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`layer count must be a positive integer, got ${count}`);
  const each = Math.floor(totalBytes / count);
  return Array.from({ length: count }, (_, i) => (i === count - 1 ? totalBytes - each * (count - 1) : each));
}
