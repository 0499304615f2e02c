/**
 * Fuzzes the supernode's peer WebSocket and its POST bodies. A real
 * supernode (real PieceStore in a temp dir, FAKE registry) listens on
 * 127.0.0.1:0; a `ws` client sends arbitrary frames: protocol look-alikes with
 * wrong types, random JSON, random text and bytes, binary frames, deeply
 * nested JSON, frames over 1 MiB. The server must answer error frames or close
 * the socket, never crash, and still serve a valid register and heartbeat
 * afterwards. POST bodies (tasks, schedule) always get 200 or a 4xx with
 * `{ code, message }`.
 */
import test from 'ava';
import fc from 'fast-check';
import { Value } from '@sinclair/typebox/value';
import WebSocket from 'ws';
import type { InjectOptions } from 'fastify';
import { API_PREFIX, MAX_WS_FRAME_BYTES, ScheduleResponseSchema, SupernodeMessageSchema, TaskInfoSchema } from '@shoal/core';
import { PEERS_WS_PATH } from '../src/index.js';
import { digestOf, startSupernode, type RunningSupernode } from './helpers/fixture.js';

const SEED = 20_240_517;
const BLOB = Buffer.alloc(3 * 1024 * 1024 + 17, 5); // 4 pieces of 1 MiB
const DIGEST = digestOf(BLOB);
const OTHER_DIGEST = `sha256:${'0'.repeat(64)}`;

/** Values of the wrong type for any field. */
const wrong = fc.oneof(
  fc.constantFrom<unknown>(null, true, -1, 1.5, 2 ** 53, 1e300, '', [], {}, [[[]]], 'sha256:zz', '__proto__', 'x'.repeat(400)),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.jsonValue({ maxDepth: 3 }),
);
const maybe = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined, freq: 3 });
const peerId = fc.oneof({ weight: 3, arbitrary: fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/) }, wrong);
const digest = fc.oneof({ weight: 3, arbitrary: fc.constantFrom<unknown>(DIGEST, OTHER_DIGEST) }, wrong);
const pieceIndex = fc.oneof({ weight: 3, arbitrary: fc.nat({ max: 10 }) }, fc.constantFrom<unknown>(2 ** 31, 2 ** 53, 1e300, -1, 0.5), wrong);
const pieces = fc.oneof(fc.array(pieceIndex, { maxLength: 30 }), fc.constant(Array.from({ length: 100_001 }, (_, i) => i)), wrong);
function defined(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined));
}
const lookalike = fc
  .record({
    type: fc.oneof({ weight: 4, arbitrary: fc.constantFrom<unknown>('register', 'heartbeat', 'have', 'prefetched') }, fc.constantFrom<unknown>('registered', 'error', 'HAVE', 'prefetch', ''), wrong),
    peerId: maybe(peerId),
    advertiseUrl: maybe(fc.oneof(fc.constantFrom('http://127.0.0.1:1', 'http://peer.invalid:65002'), wrong)),
    zone: maybe(fc.oneof(fc.constantFrom('a', 'z'.repeat(101)), wrong)),
    digest: maybe(digest),
    pieces: maybe(pieces),
    nodeName: maybe(fc.oneof(fc.constantFrom<unknown>('node-a', 'Node_A', 'n'.repeat(254)), wrong)),
    job: maybe(fc.oneof(fc.constantFrom<unknown>('0b9f6a1e-4d3c-4f5e-8a7b-1c2d3e4f5a6b', 'job'), wrong)),
    ok: maybe(fc.oneof(fc.boolean(), wrong)),
    error: maybe(fc.oneof(fc.constantFrom<unknown>('quota', 'e'.repeat(2001)), wrong)),
    extra: maybe(wrong),
  })
  .map(defined);

type Frame = { kind: 'text'; data: string } | { kind: 'binary'; data: Buffer };
const frame: fc.Arbitrary<Frame> = fc.oneof(
  { weight: 6, arbitrary: lookalike.map((v): Frame => ({ kind: 'text', data: JSON.stringify(v) })) },
  { weight: 2, arbitrary: fc.json({ maxDepth: 4 }).map((data): Frame => ({ kind: 'text', data })) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }).map((data): Frame => ({ kind: 'text', data })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b): Frame => ({ kind: 'binary', data: Buffer.from(b) })) },
  { weight: 1, arbitrary: lookalike.map((v): Frame => ({ kind: 'binary', data: Buffer.from(JSON.stringify(v)) })) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<Frame>(
      { kind: 'text', data: '['.repeat(200_000) + ']'.repeat(200_000) },
      { kind: 'text', data: '{"a":'.repeat(50_000) + '1' + '}'.repeat(50_000) },
      { kind: 'text', data: `{"type":"have","digest":"${DIGEST}","pieces":[${'1,'.repeat(200_000)}1]}` },
      { kind: 'text', data: 'x'.repeat(MAX_WS_FRAME_BYTES + 1) },
      { kind: 'binary', data: Buffer.alloc(MAX_WS_FRAME_BYTES + 1024, 0x7b) },
      { kind: 'text', data: '' },
      { kind: 'text', data: '\ud800' },
    ),
  },
);

/** An invalid frame: its error reply proves every frame before it was handled. */
const BAD_FRAME = '"not a message"';

interface Session {
  received: unknown[];
  binaryReceived: number;
  closeCode: number | undefined;
}

let sessions = 0;

/**
 * Opens a socket, sends the frames and then a sentinel (a valid register with
 * a peer id of its own), and waits for the sentinel's `registered` (every
 * frame before it was handled) or for the server to close the socket.
 */
async function exchange(port: number, frames: readonly Frame[]): Promise<Session> {
  const sentinel = `sentinel-${++sessions}`;
  const ws = new WebSocket(`ws://127.0.0.1:${port}${PEERS_WS_PATH}`, { maxPayload: 4 * MAX_WS_FRAME_BYTES });
  const session: Session = { received: [], binaryReceived: 0, closeCode: undefined };
  return new Promise<Session>((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no answer to the sentinel nor a close after ${frames.length} frames; got ${JSON.stringify(session.received).slice(0, 300)}`));
    }, 10_000);
    ws.on('open', () => {
      for (const f of frames) ws.send(f.data, { binary: f.kind === 'binary' });
      ws.send(JSON.stringify({ type: 'register', peerId: sentinel, advertiseUrl: 'http://127.0.0.1:1' }));
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) session.binaryReceived++;
      const message = JSON.parse(data.toString('utf8')) as { type?: unknown; peerId?: unknown };
      session.received.push(message);
      if (message.type === 'registered' && message.peerId === sentinel) ws.close();
    });
    ws.on('close', (code) => {
      clearTimeout(timer);
      session.closeCode = code;
      resolve(session);
    });
    ws.on('error', () => {
      // An oversized frame can make the server cut the socket mid-send: the close event follows.
    });
  });
}

/**
 * A valid register, heartbeat and have on a fresh socket, then a bad frame
 * whose error proves the three before it were handled. Returns the answers
 * and whether the peer table held the peer at that moment.
 */
async function registerAndBeat(supernode: RunningSupernode, peer: string): Promise<{ received: unknown[]; known: boolean }> {
  const ws = new WebSocket(`ws://127.0.0.1:${supernode.port}${PEERS_WS_PATH}`);
  const received: unknown[] = [];
  let known = false;
  await new Promise<void>((resolve, reject) => {
    ws.on('open', () => ws.send(JSON.stringify({ type: 'register', peerId: peer, advertiseUrl: 'http://127.0.0.1:1' })));
    ws.on('message', (data: Buffer) => {
      received.push(JSON.parse(data.toString('utf8')));
      if (received.length === 1) {
        ws.send(JSON.stringify({ type: 'heartbeat' }));
        ws.send(JSON.stringify({ type: 'have', digest: DIGEST, pieces: [0, 1] }));
        ws.send(BAD_FRAME);
      } else {
        known = supernode.peers.get(peer) !== undefined;
        ws.close();
      }
    });
    ws.on('close', () => resolve());
    ws.on('error', reject);
  });
  return { received, known };
}

test('arbitrary frames get error frames or a close, never a crash; register and heartbeat still work', async (t) => {
  t.timeout(120_000);
  const supernode = await startSupernode({ blobs: [BLOB] });
  t.teardown(() => supernode.close());
  // The blob is known to the supernode, so `have` frames reach the scheduler.
  const task = await supernode.app.inject({ method: 'POST', url: `${API_PREFIX}/tasks`, payload: { digest: DIGEST, registry: 'registry.example', repository: 'a/b' } });
  t.is(task.statusCode, 200, task.body);
  await supernode.store.waitForComplete(DIGEST);

  const closeCodes = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 14 }), async (frames) => {
      const session = await exchange(supernode.port, frames);
      closeCodes.set(session.closeCode ?? 0, (closeCodes.get(session.closeCode ?? 0) ?? 0) + 1);
      if (session.binaryReceived > 0) throw new Error('the server sent a binary frame');
      for (const message of session.received) {
        if (!Value.Check(SupernodeMessageSchema, message)) throw new Error(`not a supernode message: ${JSON.stringify(message).slice(0, 200)}`);
      }
      // 1000/1005: we closed after the sentinel's answer; 1008: too many bad frames; 1009: frame too big; 1006: cut mid-send after 1009.
      if (![1000, 1005, 1006, 1008, 1009].includes(session.closeCode ?? 0)) throw new Error(`closed with ${session.closeCode}`);
    }),
    { seed: SEED, numRuns: 120, includeErrorInReport: true },
  );
  t.log(`close codes ${JSON.stringify(Object.fromEntries(closeCodes))}`);

  const { received, known } = await registerAndBeat(supernode, 'peer-after-fuzz');
  t.deepEqual(received[0], { type: 'registered', peerId: 'peer-after-fuzz' });
  // The heartbeat and have raised no error: the next answer is the bad frame's.
  t.is(received.length, 2);
  t.like(received[1], { type: 'error', code: 'SHOAL_BAD_FRAME' });
  t.regex((received[1] as { message: string }).message, /union/);
  t.true(known);
});

test('a frame over MAX_WS_FRAME_BYTES closes the socket with 1009 (maxPayload)', async (t) => {
  const supernode = await startSupernode({ blobs: [] });
  t.teardown(() => supernode.close());
  const session = await exchange(supernode.port, [{ kind: 'text', data: JSON.stringify({ type: 'heartbeat', pad: 'x'.repeat(MAX_WS_FRAME_BYTES) }) }]);
  t.true(session.closeCode === 1009 || session.closeCode === 1006, `closed with ${session.closeCode}`);
  t.deepEqual((await registerAndBeat(supernode, 'p1')).received[0], { type: 'registered', peerId: 'p1' });
});

const taskBody = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({ digest: fc.constantFrom(DIGEST, OTHER_DIGEST), registry: fc.constant('registry.example'), repository: fc.constant('a/b'), peerId: fc.constantFrom('p1', 'p2') }),
  },
  fc
    .record({
      digest: maybe(digest),
      registry: maybe(fc.oneof(fc.constantFrom<unknown>('registry.example', 'docker.io', 'bad host', 'a'.repeat(261)), wrong)),
      repository: maybe(fc.oneof(fc.constantFrom<unknown>('a/b', 'Upper', 'a'.repeat(256)), wrong)),
      sizeBytes: maybe(fc.oneof(fc.constantFrom<unknown>(BLOB.length, 0, -1, 2 ** 40, 64 * 1024 ** 3 + 1), wrong)),
      peerId: maybe(peerId),
      extra: maybe(wrong),
    })
    .map(defined),
  fc.jsonValue({ maxDepth: 4 }),
);
const scheduleBody = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record(
      {
        peerId: fc.constantFrom('p1', 'p2', 'p3'),
        advertiseUrl: fc.constantFrom('http://127.0.0.1:1', 'http://127.0.0.1:2'),
        limit: fc.nat({ max: 8 }),
        urgent: fc.array(fc.nat({ max: 6 }), { maxLength: 4 }),
        have: fc.array(fc.nat({ max: 6 }), { maxLength: 4 }),
        failures: fc.array(fc.record({ parentId: fc.constantFrom('seed', 'p1', 'p2'), piece: fc.nat({ max: 6 }), kind: fc.constantFrom('bad-piece', 'stalled', 'unreachable', 'missing', 'busy') }), { maxLength: 2 }),
      },
      { requiredKeys: ['peerId', 'limit'] },
    ),
  },
  fc
    .record({
      peerId: maybe(peerId),
      advertiseUrl: maybe(fc.oneof(fc.constant('http://127.0.0.1:1'), wrong)),
      zone: maybe(fc.oneof(fc.constant('z'), wrong)),
      limit: maybe(fc.oneof(fc.nat({ max: 300 }), wrong)),
      urgent: maybe(fc.oneof(fc.array(pieceIndex, { maxLength: 70 }), wrong)),
      have: maybe(fc.oneof(fc.array(pieceIndex, { maxLength: 20 }), fc.constant(Array.from({ length: 5_000 }, () => 'x')), wrong)),
      failures: maybe(
        fc.oneof(
          fc.array(fc.record({ parentId: fc.oneof(fc.constantFrom('seed', 'p'), wrong), piece: pieceIndex, kind: fc.oneof(fc.constantFrom('bad-piece', 'stalled', 'unreachable', 'missing', 'busy'), wrong) }), { maxLength: 5 }),
          fc.constant(Array.from({ length: 3_000 }, () => ({ x: 1 }))),
          wrong,
        ),
      ),
      extra: maybe(wrong),
    })
    .map(defined),
  fc.jsonValue({ maxDepth: 4 }),
);
/** A body as sent: JSON (often), raw text, nested or oversized, with a content type. */
function asPayload(body: fc.Arbitrary<unknown>): fc.Arbitrary<{ payload: string; contentType: string }> {
  return fc.oneof(
    { weight: 6, arbitrary: body.map((b) => ({ payload: JSON.stringify(b) ?? 'null', contentType: 'application/json' })) },
    fc.record({ payload: fc.string({ unit: 'binary', maxLength: 100 }), contentType: fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1') }),
    fc.constantFrom(
      { payload: '['.repeat(30_000) + ']'.repeat(30_000), contentType: 'application/json' },
      { payload: `{"peerId":"p","limit":1,"pad":"${'x'.repeat(70 * 1024)}"}`, contentType: 'application/json' },
      { payload: '{"__proto__":{"polluted":1},"peerId":"p","limit":1}', contentType: 'application/json' },
      { payload: '{"constructor":{"prototype":{"polluted":1}},"peerId":"p","limit":1}', contentType: 'application/json' },
      { payload: '', contentType: 'application/json' },
    ),
  );
}

test('POST bodies of tasks and schedule get 200 or a 4xx with { code, message }', async (t) => {
  t.timeout(60_000);
  const supernode = await startSupernode({ blobs: [BLOB] });
  t.teardown(() => supernode.close());
  const first = await supernode.app.inject({ method: 'POST', url: `${API_PREFIX}/tasks`, payload: { digest: DIGEST, registry: 'registry.example', repository: 'a/b' } });
  t.is(first.statusCode, 200, first.body);
  await supernode.store.waitForComplete(DIGEST);

  const statuses = new Map<string, number>();
  const post = fc.oneof(
    fc.record({ url: fc.constant(`${API_PREFIX}/tasks`), body: asPayload(taskBody) }),
    fc.record({
      url: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(DIGEST, OTHER_DIGEST) }, fc.constantFrom('sha256:zz', '%', '..', 'x'.repeat(300))).map((d) => `${API_PREFIX}/blobs/${d}/schedule`),
      body: asPayload(scheduleBody),
    }),
  );
  await fc.assert(
    fc.asyncProperty(post, async ({ url, body }) => {
      const options: InjectOptions = { method: 'POST', url, payload: body.payload, headers: { 'content-type': body.contentType } };
      const response = await supernode.app.inject(options);
      const route = url.endsWith('/schedule') ? 'schedule' : 'tasks';
      statuses.set(`${route} ${response.statusCode}`, (statuses.get(`${route} ${response.statusCode}`) ?? 0) + 1);
      const parsed = JSON.parse(response.body) as Record<string, unknown>;
      if (response.statusCode === 200) {
        const schema = route === 'schedule' ? ScheduleResponseSchema : TaskInfoSchema;
        if (!Value.Check(schema, parsed)) throw new Error(`200 with an invalid ${route} answer: ${response.body.slice(0, 200)}`);
        return;
      }
      if (response.statusCode < 400 || response.statusCode > 499) throw new Error(`${response.statusCode} for ${body.payload.slice(0, 200)}: ${response.body.slice(0, 300)}`);
      if (typeof parsed.code !== 'string' || typeof parsed.message !== 'string') throw new Error(`4xx without { code, message }: ${response.body.slice(0, 200)}`);
      if (({} as Record<string, unknown>).polluted !== undefined) throw new Error('prototype polluted');
    }),
    { seed: SEED, numRuns: 1_000, includeErrorInReport: true },
  );
  t.log(`statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
  for (const expected of ['tasks 200', 'tasks 400', 'schedule 200', 'schedule 400', 'schedule 404', 'schedule 413']) t.true((statuses.get(expected) ?? 0) > 0, `no ${expected}`);
});
