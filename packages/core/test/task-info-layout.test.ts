import test from 'ava';
import { BadRequestError, parseTaskInfo, pieceLayout } from '../src/index.js';

const MiB = 1024 * 1024;
const DIGEST = `sha256:${'a'.repeat(64)}`;

function infoFor(sizeBytes: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const layout = pieceLayout(sizeBytes);
  return { digest: DIGEST, sizeBytes, pieceSizeBytes: layout.pieceSizeBytes, pieceCount: layout.pieceCount, pieceSha256: Array.from({ length: layout.pieceCount }, () => null), complete: false, ...overrides };
}

test('a blob description in this version’s layout is taken as it is', (t) => {
  for (const size of [0, 1, MiB, 3 * MiB + 5, 2048 * MiB]) t.deepEqual(parseTaskInfo(infoFor(size), 'task info'), infoFor(size));
});

test('another piece size, piece count or hash count is refused with the sizes in the message', (t) => {
  const size = 5 * MiB;
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [infoFor(size, { pieceSizeBytes: 2 * MiB, pieceCount: 3, pieceSha256: [null, null, null] }), /3 pieces of 2097152 bytes \(3 hashes\) for a blob of 5242880 bytes, which this version cuts into 5 of 1048576/],
    [infoFor(size, { pieceCount: 4 }), /4 pieces of 1048576 bytes/],
    [infoFor(size, { pieceSha256: [null] }), /\(1 hashes\)/],
  ];
  for (const [info, message] of cases) {
    const err = t.throws(() => parseTaskInfo(info, 'task info'), { instanceOf: BadRequestError });
    t.regex(err?.message ?? '', message);
  }
});

test('what the schema refuses is still refused first', (t) => {
  t.throws(() => parseTaskInfo({ ...infoFor(MiB), pieceSizeBytes: 0 }, 'task info'), { instanceOf: BadRequestError, message: /invalid task info: \/pieceSizeBytes/ });
});
