import test from 'ava';
import type { Digest, PeerMessage } from '@shoal/core';
import { PieceAnnouncer } from '../src/piece-announcer.js';

const DIGEST = `sha256:${'5'.repeat(64)}` as Digest;
const wait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function announcer(t: import('ava').ExecutionContext) {
  const sent: string[] = [];
  const a = new PieceAnnouncer((m: PeerMessage) => sent.push(`${m.type}:${'pieces' in m ? m.pieces.join(',') : ''}`), 30);
  t.teardown(() => a.close());
  return { a, sent };
}

test('a piece verified before its arrival was announced is announced once, as held', async (t) => {
  const { a, sent } = announcer(t);
  a.arriving(DIGEST, 1);
  a.verified(DIGEST, 1);
  await wait(60);
  t.deepEqual(sent, ['have:1']);
});

test('a piece still arriving after the delay is announced as arriving, then as held', async (t) => {
  const { a, sent } = announcer(t);
  a.arriving(DIGEST, 2);
  a.arriving(DIGEST, 2);
  await wait(60);
  t.deepEqual(sent, ['arriving:2']);
  a.verified(DIGEST, 2);
  t.deepEqual(sent, ['arriving:2', 'have:2']);
});

test('a failed arrival is taken back only if it was announced', async (t) => {
  const { a, sent } = announcer(t);
  a.arriving(DIGEST, 3);
  a.failed(DIGEST, 3);
  a.arriving(DIGEST, 4);
  await wait(60);
  a.failed(DIGEST, 4);
  t.deepEqual(sent, ['arriving:4', 'arrivalFailed:4']);
});
