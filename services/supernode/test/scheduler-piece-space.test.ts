/**
 * The largest blob the scheduler takes (MAX_PIECES_PER_BLOB pieces: 1 TiB in
 * the layout's largest, 8 MiB, pieces) is scheduled by its real piece indexes:
 * the sort key packs a piece's index below its rarity, and an index past that
 * space would come back as another piece.
 */
import test from 'ava';
import { MAX_PIECES_PER_BLOB, Scheduler } from '../src/scheduler/index.js';
import { MAX_PIECE_SIZE_BYTES, pieceLayout } from '@shoal/core';

const BLOB = `sha256:${'a'.repeat(64)}`;
const TOO_BIG = `sha256:${'b'.repeat(64)}`;

test('a 1 TiB blob fits the scheduler, and its last pieces are assigned by their own indexes', (t) => {
  t.is(pieceLayout(MAX_PIECES_PER_BLOB * MAX_PIECE_SIZE_BYTES).pieceCount, MAX_PIECES_PER_BLOB);
  const s = new Scheduler({ clock: { now: () => 0 }, random: () => 0.5 });
  s.addBlob(BLOB, MAX_PIECES_PER_BLOB);
  t.throws(() => s.addBlob(TOO_BIG, MAX_PIECES_PER_BLOB + 1), { instanceOf: RangeError });
  for (const id of ['holder', 'child']) s.addPeer({ peerId: id, url: `http://${id}` });
  const last = MAX_PIECES_PER_BLOB - 1;
  const held = [3, 70_000, last];
  s.peerHas('holder', BLOB, held);
  const pieces = s.schedule('child', BLOB, { limit: 8 }).map((a) => a.piece).sort((x, y) => x - y);
  t.deepEqual(pieces, held);
});
