import test from 'ava';
import fc from 'fast-check';
import { MAX_PIECE_SIZE_BYTES, MIN_PIECE_SIZE_BYTES, TARGET_PIECE_COUNT, pieceLayout, pieceSizeFor, pieceSpan, piecesForRange } from '../src/index.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

test('piece size grows in powers of two between the bounds', (t) => {
  t.is(pieceSizeFor(0), MIN_PIECE_SIZE_BYTES);
  t.is(pieceSizeFor(1), MIN_PIECE_SIZE_BYTES);
  t.is(pieceSizeFor(256 * MiB), MiB);
  t.is(pieceSizeFor(256 * MiB + 1), 2 * MiB);
  t.is(pieceSizeFor(512 * MiB), 2 * MiB);
  t.is(pieceSizeFor(GiB), 4 * MiB);
  t.is(pieceSizeFor(2 * GiB), 8 * MiB);
  t.is(pieceSizeFor(2 * GiB + 1), 8 * MiB);
  t.is(pieceSizeFor(16 * GiB), 8 * MiB);
  t.is(pieceSizeFor(100 * GiB), MAX_PIECE_SIZE_BYTES);
});

test('invalid blob sizes throw RangeError', (t) => {
  for (const size of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
    t.throws(() => pieceSizeFor(size), { instanceOf: RangeError }, String(size));
  }
});

test('layout and spans of a blob with a short last piece', (t) => {
  const layout = pieceLayout(3 * MiB + 5);
  t.deepEqual(layout, { blobSizeBytes: 3 * MiB + 5, pieceSizeBytes: MiB, pieceCount: 4 });
  t.deepEqual(pieceSpan(layout, 0), { offset: 0, length: MiB });
  t.deepEqual(pieceSpan(layout, 3), { offset: 3 * MiB, length: 5 });
  t.deepEqual(pieceLayout(0), { blobSizeBytes: 0, pieceSizeBytes: MiB, pieceCount: 0 });
  t.deepEqual(pieceLayout(2 * MiB).pieceCount, 2);
});

test('pieceSpan rejects indexes outside the blob', (t) => {
  const layout = pieceLayout(2 * MiB);
  for (const index of [-1, 2, 0.5, Number.NaN]) t.throws(() => pieceSpan(layout, index), { instanceOf: RangeError }, String(index));
  t.throws(() => pieceSpan(pieceLayout(0), 0), { instanceOf: RangeError });
});

test('piecesForRange finds the pieces holding a byte range', (t) => {
  const layout = pieceLayout(5 * MiB);
  t.deepEqual(piecesForRange(layout, 0, 0), { first: 0, last: 0 });
  t.deepEqual(piecesForRange(layout, MiB - 1, MiB), { first: 0, last: 1 });
  t.deepEqual(piecesForRange(layout, 2 * MiB, 5 * MiB - 1), { first: 2, last: 4 });
});

test('spans tile every blob exactly, within the piece count target', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 2 ** 40 }), (size) => {
      const layout = pieceLayout(size);
      const first = pieceSpan(layout, 0);
      const last = pieceSpan(layout, layout.pieceCount - 1);
      const tiles = first.offset === 0 && last.offset + last.length === size && last.length > 0 && last.length <= layout.pieceSizeBytes;
      const bounded = layout.pieceCount <= TARGET_PIECE_COUNT || layout.pieceSizeBytes === MAX_PIECE_SIZE_BYTES;
      const power = Number.isInteger(Math.log2(layout.pieceSizeBytes));
      const range = piecesForRange(layout, 0, size - 1);
      return tiles && bounded && power && range.first === 0 && range.last === layout.pieceCount - 1;
    }),
  );
  t.pass();
});
