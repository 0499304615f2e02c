// Regression: parseFrame handed any frame under 1 MiB to JSON.parse. A frame
// of 500,000 nested `[` and `]` took ~0.5 s to parse (an event-loop stall per
// frame from any connected peer) before the schema refused it.
import test from 'ava';
import { performance } from 'node:perf_hooks';
import { BadRequestError, MAX_FRAME_JSON_DEPTH, MAX_WS_FRAME_BYTES, PeerMessageSchema, parseFrame } from '../src/index.js';

test('a deeply nested frame is refused before it is parsed', (t) => {
  const half = MAX_WS_FRAME_BYTES / 2;
  const frames = [
    '['.repeat(half) + ']'.repeat(half),
    '{"a":'.repeat(half / 5) + '1' + '}'.repeat(half / 5),
    `{"type":"have","digest":"x","pieces":${'['.repeat(half - 100)}`,
  ];
  for (const frame of frames) {
    const started = performance.now();
    const error = t.throws(() => parseFrame(PeerMessageSchema, Buffer.from(frame), 'peer message'), { instanceOf: BadRequestError });
    const ms = performance.now() - started;
    t.regex(error?.message ?? '', /nested deeper/);
    t.true(ms < 100, `took ${ms.toFixed(1)} ms`);
  }
});

test('brackets inside strings (escaped quotes too) do not count, and real messages pass', (t) => {
  const zone = '\\"' + '[{'.repeat(40);
  const frame = `{"type":"register","peerId":"p","advertiseUrl":"http://a","zone":"${zone}"}`;
  const message = parseFrame(PeerMessageSchema, frame, 'peer message');
  t.deepEqual(message, { type: 'register', peerId: 'p', advertiseUrl: 'http://a', zone: `"${'[{'.repeat(40)}` });
  const nested = '['.repeat(MAX_FRAME_JSON_DEPTH) + ']'.repeat(MAX_FRAME_JSON_DEPTH);
  t.throws(() => parseFrame(PeerMessageSchema, nested, 'peer message'), { message: /Expected union value/ });
});
