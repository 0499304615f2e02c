// A download whose bytes keep coming is slow, not stalled: in a healthy pull on a slow
// link shared by an image's layers, pieces often take over 5 s, and every such wait was
// logged as a warning and counted as a stall (bench:swarm, N=16, 10 Mbit/s: 268 warnings,
// 19 of them with no byte for 5 s).
import test from 'ava';
import { stallState } from '../src/index.js';

const NOW = 100_000;

test('pieces missing and no byte for 5 s: stalled', (t) => {
  t.is(stallState(NOW, { lastPieceMs: NOW - 9_000, lastByteMs: NOW - 6_000, lastReportMs: 0 }), 'stalled');
});

test('bytes arriving but no piece landed for 5 s: slow, not stalled', (t) => {
  t.is(stallState(NOW, { lastPieceMs: NOW - 9_000, lastByteMs: NOW - 200, lastReportMs: 0 }), 'slow');
  t.is(stallState(NOW, { lastPieceMs: NOW - 5_000, lastByteMs: NOW - 4_999, lastReportMs: 0 }), 'slow');
});

test('a piece landed within 5 s, or a report went out within 5 s: nothing to say', (t) => {
  t.is(stallState(NOW, { lastPieceMs: NOW - 4_999, lastByteMs: NOW - 9_000, lastReportMs: 0 }), 'moving');
  t.is(stallState(NOW, { lastPieceMs: NOW - 9_000, lastByteMs: NOW - 9_000, lastReportMs: NOW - 1_000 }), 'moving');
});
