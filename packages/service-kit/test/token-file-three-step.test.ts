/**
 * The token file's watch hands the whole list to ClusterAuth: a real file, laid out as
 * kubelet lays out a Secret volume (`token` → `..data/token`, `..data` swapped), taken
 * through the three-step rotation, with one log line per change and never a token logged.
 */
import test from 'ava';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { ClusterAuth, isSupernodeAudience, parseTokenText, type Clock, type TokenChange } from '@shoal/core';
import { watchTokenFile } from '../src/index.js';

const OLD = 'watch-old-token-0123456789abcdef';
const NEW = 'watch-new-token-fedcba9876543210';
const GRACE_MS = 30_000;
const PATH = '/api/v1/status';

class FakeClock implements Clock {
  constructor(public ms = 1_800_000_000_000) {}
  now(): number {
    return this.ms;
  }
}

async function secretVolume(dir: string, text: string): Promise<{ file: string; write(text: string): Promise<void> }> {
  let version = 0;
  const write = async (value: string): Promise<void> => {
    const versioned = `..v${++version}`;
    await mkdir(join(dir, versioned));
    await writeFile(join(dir, versioned, 'token'), value);
    await symlink(versioned, join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  };
  await write(text);
  await symlink('..data/token', join(dir, 'token'));
  return { file: join(dir, 'token'), write };
}

test('OLD, then OLD+NEW, NEW+OLD, NEW: each read hands the list over, each change is logged once', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-token-file-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const lines: Array<{ msg: string; kid?: string; problem?: string }> = [];
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      raw.push(chunk.toString('utf8'));
      lines.push(JSON.parse(chunk.toString('utf8')) as { msg: string });
      done();
    },
  });
  const log = pino({ level: 'info' }, sink);
  const clock = new FakeClock();
  const volume = await secretVolume(dir, `${OLD}\n`);

  // As a service starts: the file read once, the first token signing.
  const started = parseTokenText(`${OLD}\n`);
  if ('problem' in started) throw new Error(started.problem);
  const [token, ...acceptedTokens] = started.tokens;
  const auth = new ClusterAuth({ clock }, { token, acceptedTokens, graceMs: GRACE_MS });
  const seen: Array<readonly TokenChange[]> = [];
  const watch = watchTokenFile({ log }, auth, { path: volume.file, intervalMs: 3_600_000, onChange: (c) => seen.push(c) });
  t.teardown(() => watch.close());
  const oldOnly = new ClusterAuth({ clock }, { token: OLD });
  const newOnly = new ClusterAuth({ clock }, { token: NEW });
  const accepts = (to: ClusterAuth, from: ClusterAuth): boolean => {
    const headers = from.sign('GET', PATH, { kind: 'supernode' });
    return to.check({ method: 'GET', url: PATH, signature: headers['x-shoal-signature'], token: undefined }, isSupernodeAudience).ok;
  };
  const kid = (a: ClusterAuth): string => /kid=([0-9a-f]{16})/.exec(a.sign('GET', PATH, { kind: 'supernode' })['x-shoal-signature'] ?? '')?.[1] ?? '';

  await watch.poll();
  t.deepEqual(seen, [], 'the file as it was at start: nothing changed');
  t.false(accepts(auth, newOnly));

  // Step 1: OLD signs, NEW accepted.
  await volume.write(`${OLD}\n${NEW}\n`);
  await watch.poll();
  t.deepEqual(seen.pop(), [{ change: 'added', kid: kid(newOnly), position: 2 }]);
  t.true(accepts(auth, newOnly));
  t.true(accepts(oldOnly, auth), 'still signs with OLD');

  // A file broken mid-way (four tokens) keeps the current list, and says so once.
  await volume.write(`${OLD}\n${NEW}\n${OLD}-a\n${OLD}-b\n`);
  await watch.poll();
  await watch.poll();
  t.is(lines.filter((l) => l.problem === 'holds 4 tokens; list at most 3 (one a line, the first signs)').length, 1);
  t.true(accepts(auth, newOnly));

  // Step 2: NEW signs after the grace, OLD still accepted.
  await volume.write(`  ${NEW}\r\n\n${OLD}\n`);
  await watch.poll();
  t.deepEqual(seen.pop(), [{ change: 'signing', kid: kid(newOnly), signFromMs: clock.ms + GRACE_MS, wasAccepted: true }]);
  t.true(accepts(oldOnly, auth), 'OLD signs for the grace');
  clock.ms += GRACE_MS;
  t.true(accepts(newOnly, auth), 'then NEW');
  t.false(accepts(oldOnly, auth));
  t.true(accepts(auth, oldOnly), 'OLD is still listed');

  // Step 3: NEW alone; OLD is accepted for two graces more.
  await volume.write(`${NEW}\n`);
  await watch.poll();
  t.deepEqual(seen.pop(), [{ change: 'removed', kid: kid(oldOnly), acceptUntilMs: clock.ms + 2 * GRACE_MS }]);
  clock.ms += 2 * GRACE_MS - 1;
  t.true(accepts(auth, oldOnly));
  clock.ms += 1;
  t.false(accepts(auth, oldOnly));
  t.true(accepts(auth, newOnly));

  t.deepEqual(
    lines.map((l) => l.msg),
    [
      'cluster token file: token added; accepted, not signing',
      'token file unusable; keeping the current tokens',
      'cluster token file: the first token changed; it signs after the grace period, the previous one until then',
      'cluster token file: token removed; accepted for two grace periods, then refused',
    ],
  );
  t.false(raw.join('').includes(OLD.slice(0, 16)), 'no token in the log');
  t.false(raw.join('').includes(NEW.slice(0, 16)));
});
