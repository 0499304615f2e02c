/**
 * The frames of preheat into nodes, parsed at the edge like every other
 * WebSocket frame: `prefetch` (supernode → peer, a bounded list of blobs),
 * `prefetched` (peer → supernode, one answer per blob, a bounded error), and
 * the optional `nodeName` of `register` (a Kubernetes node name; peers from
 * before it send none and still register).
 */
import test from 'ava';
import { BadRequestError, isNodeName, MAX_PREFETCH_BLOBS_PER_FRAME, parseFrame, PeerMessageSchema, PreheatRequestSchema, parseWire, SupernodeMessageSchema } from '../src/index.js';

const JOB = '0b9f6a1e-4d3c-4f5e-8a7b-1c2d3e4f5a6b';
const DIGEST = `sha256:${'a'.repeat(64)}`;
const BLOB = { digest: DIGEST, sizeBytes: 1234, registry: 'registry.test:5000', repository: 'team/app' };
const frame = (value: unknown): string => JSON.stringify(value);

test('a prefetch frame with blobs parses; more than MAX_PREFETCH_BLOBS_PER_FRAME, none, or a bad field is refused', (t) => {
  t.deepEqual(parseFrame(SupernodeMessageSchema, frame({ type: 'prefetch', job: JOB, blobs: [BLOB] }), 'supernode message'), { type: 'prefetch', job: JOB, blobs: [BLOB] });
  const many = Array.from({ length: MAX_PREFETCH_BLOBS_PER_FRAME }, () => BLOB);
  t.is((parseFrame(SupernodeMessageSchema, frame({ type: 'prefetch', job: JOB, blobs: many }), 'm') as { blobs: unknown[] }).blobs.length, MAX_PREFETCH_BLOBS_PER_FRAME);
  const bad: unknown[] = [
    { type: 'prefetch', job: JOB, blobs: [...many, BLOB] },
    { type: 'prefetch', job: JOB, blobs: [] },
    { type: 'prefetch', job: 'not-a-uuid', blobs: [BLOB] },
    { type: 'prefetch', job: JOB, blobs: [{ ...BLOB, digest: 'sha256:zz' }] },
    { type: 'prefetch', job: JOB, blobs: [{ ...BLOB, sizeBytes: -1 }] },
    { type: 'prefetch', job: JOB, blobs: [{ ...BLOB, repository: '' }] },
    { type: 'prefetch', job: JOB, blobs: [{ ...BLOB, registry: 'r'.repeat(261) }] },
    { type: 'prefetch', job: JOB, blobs: [{ ...BLOB, extra: 1 }] },
    { type: 'prefetch', job: JOB, blobs: [BLOB], extra: true },
    { type: 'prefetch', job: JOB },
  ];
  for (const value of bad) t.throws(() => parseFrame(SupernodeMessageSchema, frame(value), 'supernode message'), { instanceOf: BadRequestError }, frame(value).slice(0, 200));
});

test('a prefetched frame parses with or without an error; a long error, a missing ok or a bad digest is refused', (t) => {
  t.deepEqual(parseFrame(PeerMessageSchema, frame({ type: 'prefetched', job: JOB, digest: DIGEST, ok: true }), 'peer message'), { type: 'prefetched', job: JOB, digest: DIGEST, ok: true });
  const failed = { type: 'prefetched', job: JOB, digest: DIGEST, ok: false, error: 'e'.repeat(2000) };
  t.deepEqual(parseFrame(PeerMessageSchema, frame(failed), 'peer message'), failed);
  const bad: unknown[] = [
    { ...failed, error: 'e'.repeat(2001) },
    { type: 'prefetched', job: JOB, digest: DIGEST },
    { type: 'prefetched', job: JOB, digest: DIGEST, ok: 'yes' },
    { type: 'prefetched', job: JOB, digest: 'sha256:zz', ok: true },
    { type: 'prefetched', digest: DIGEST, ok: true },
    { type: 'prefetched', job: JOB, digest: DIGEST, ok: true, extra: 1 },
  ];
  for (const value of bad) t.throws(() => parseFrame(PeerMessageSchema, frame(value), 'peer message'), { instanceOf: BadRequestError });
});

test('register takes an optional node name, which must be a Kubernetes node name', (t) => {
  const register = { type: 'register', peerId: 'peer-1', advertiseUrl: 'http://10.0.0.1:65002' };
  t.deepEqual(parseFrame(PeerMessageSchema, frame(register), 'peer message'), register, 'an old peer without a node name');
  for (const nodeName of ['node-a', 'ip-10-0-0-1.eu-west-1.compute.internal', 'a', '0', 'a'.repeat(253)]) {
    t.deepEqual(parseFrame(PeerMessageSchema, frame({ ...register, nodeName }), 'peer message'), { ...register, nodeName }, nodeName.slice(0, 40));
    t.true(isNodeName(nodeName));
  }
  for (const nodeName of ['', 'Node-A', 'node_a', '-node', 'node-', 'node..a', '.node', 'node a', 'a'.repeat(254), 'nöde']) {
    t.throws(() => parseFrame(PeerMessageSchema, frame({ ...register, nodeName }), 'peer message'), { instanceOf: BadRequestError }, nodeName.slice(0, 40));
    t.false(isNodeName(nodeName), nodeName.slice(0, 40));
  }
});

test('a preheat request names nodes as all or a bounded list of node names', (t) => {
  t.deepEqual(parseWire(PreheatRequestSchema, { image: 'r.test/app:v1', nodes: 'all' }, 'r'), { image: 'r.test/app:v1', nodes: 'all' });
  t.deepEqual(parseWire(PreheatRequestSchema, { image: 'r.test/app:v1', nodes: ['node-a', 'node-b'] }, 'r'), { image: 'r.test/app:v1', nodes: ['node-a', 'node-b'] });
  for (const nodes of ['ALL', 'node-a', [], ['Node-A'], [1], Array.from({ length: 5001 }, (_, i) => `n${i}`)]) {
    t.throws(() => parseWire(PreheatRequestSchema, { image: 'r.test/app:v1', nodes }, 'r'), { instanceOf: BadRequestError });
  }
});
