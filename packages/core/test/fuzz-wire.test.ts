import test from 'ava';
import fc from 'fast-check';
import { Value } from '@sinclair/typebox/value';
import type { TSchema } from '@sinclair/typebox';
import {
  BadRequestError,
  MAX_WS_FRAME_BYTES,
  PeerMessageSchema,
  ScheduleRequestSchema,
  SupernodeMessageSchema,
  TaskInfoSchema,
  TaskRequestSchema,
  parseFrame,
  parseWire,
} from '../src/index.js';
import { anyString, attempt, hex64, runs } from './helpers/fuzz.js';

const SCHEMAS: ReadonlyArray<[string, TSchema]> = [
  ['peer message', PeerMessageSchema],
  ['supernode message', SupernodeMessageSchema],
  ['task request', TaskRequestSchema],
  ['task info', TaskInfoSchema],
  ['schedule request', ScheduleRequestSchema],
];

/** Values of the wrong type for any field. */
const wrong = fc.oneof(
  fc.constantFrom<unknown>(null, true, -1, 1.5, 2 ** 53, 1e300, '', [], {}, [[[]]], { __proto__: 1 }, 'sha256:zz', '__proto__'),
  anyString,
  fc.jsonValue({ maxDepth: 3 }),
);
const peerId = fc.oneof(fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/), wrong);
const digest = fc.oneof(hex64.map((h) => `sha256:${h}`), wrong);
const index = fc.oneof(fc.nat(), wrong);
const maybe = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined, freq: 3 });
function withoutUndefined(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined));
}

/** Messages that look like the protocol, with some fields of the wrong type or missing, or extra ones. */
const lookalike = fc
  .record({
    type: fc.oneof(fc.constantFrom('register', 'heartbeat', 'have', 'registered', 'error', 'REGISTER', ''), wrong),
    peerId: maybe(peerId),
    advertiseUrl: maybe(fc.oneof(fc.webUrl(), wrong)),
    zone: maybe(fc.oneof(fc.string({ maxLength: 120 }), wrong)),
    digest: maybe(digest),
    pieces: maybe(fc.oneof(fc.array(index, { maxLength: 20 }), wrong)),
    registry: maybe(fc.oneof(fc.domain(), wrong)),
    repository: maybe(fc.oneof(fc.constantFrom('library/alpine', 'a'), wrong)),
    sizeBytes: maybe(fc.oneof(fc.nat(), wrong)),
    limit: maybe(fc.oneof(fc.nat({ max: 300 }), wrong)),
    urgent: maybe(fc.oneof(fc.array(index, { maxLength: 70 }), wrong)),
    have: maybe(fc.oneof(fc.array(index, { maxLength: 20 }), wrong)),
    failures: maybe(
      fc.oneof(
        fc.array(fc.record({ parentId: fc.oneof(fc.string(), wrong), piece: index, kind: fc.oneof(fc.constantFrom('bad-piece', 'stalled', 'busy', 'nope'), wrong) }), { maxLength: 5 }),
        wrong,
      ),
    ),
    extra: maybe(wrong),
  })
  .map(withoutUndefined);

test('parseWire: any value is accepted only when the schema accepts it; otherwise a BadRequestError', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.oneof(lookalike, fc.jsonValue({ maxDepth: 6 }), fc.anything({ maxDepth: 4, withNullPrototype: true, withBigInt: true, withMap: true, withTypedArray: true })), (value) => {
        for (const [what, schema] of SCHEMAS) {
          const outcome = attempt(() => parseWire(schema, value, what));
          if (outcome.ok ? !Value.Check(schema, outcome.value) : !(outcome.error instanceof BadRequestError)) return false;
        }
        return true;
      }),
      runs(4_000),
    ),
  );
});

test('parseFrame: any text or bytes give a valid message or a BadRequestError; valid messages round-trip', (t) => {
  const frame = fc.oneof(
    lookalike.map((v) => JSON.stringify(v)),
    fc.json({ maxDepth: 5 }),
    anyString,
    fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
    lookalike.map((v) => Buffer.from(JSON.stringify(v))),
    // Valid JSON cut short, or with a byte flipped.
    fc.tuple(lookalike, fc.nat()).map(([v, at]) => {
      const text = JSON.stringify(v);
      return text.slice(0, at % (text.length + 1));
    }),
  );
  t.notThrows(() =>
    fc.assert(
      fc.property(frame, (data) => {
        const outcome = attempt(() => parseFrame(PeerMessageSchema, data, 'peer message'));
        if (!outcome.ok) return outcome.error instanceof BadRequestError;
        const text = typeof data === 'string' ? data : data.toString('utf8');
        return Value.Check(PeerMessageSchema, outcome.value) && JSON.stringify(outcome.value) === JSON.stringify(JSON.parse(text));
      }),
      runs(8_000),
    ),
  );
});

test('parseFrame: valid messages of every kind parse to themselves', (t) => {
  const valid = fc.oneof(
    fc.record({ type: fc.constant('register' as const), peerId: fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/), advertiseUrl: fc.webUrl().filter((u) => u.length <= 300) }),
    fc.constant({ type: 'heartbeat' as const }),
    fc.record({ type: fc.constant('have' as const), digest: hex64.map((h) => `sha256:${h}`), pieces: fc.array(fc.nat(), { maxLength: 200 }) }),
  );
  t.notThrows(() =>
    fc.assert(
      fc.property(valid, fc.boolean(), (message, asBuffer) => {
        const text = JSON.stringify(message);
        const parsed = parseFrame(PeerMessageSchema, asBuffer ? Buffer.from(text) : text, 'peer message');
        return JSON.stringify(parsed) === text;
      }),
      runs(3_000),
    ),
  );
});

test('parseFrame: frames over MAX_WS_FRAME_BYTES are refused before parsing, whatever they hold', (t) => {
  for (const data of [Buffer.alloc(MAX_WS_FRAME_BYTES + 1, 0x20), '"' + 'é'.repeat(MAX_WS_FRAME_BYTES / 2) + '"']) {
    const error = t.throws(() => parseFrame(PeerMessageSchema, data, 'peer message'), { instanceOf: BadRequestError });
    t.regex(error?.message ?? '', /too large/);
  }
});
