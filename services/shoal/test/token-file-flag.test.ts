/**
 * `--token-file` at start: the file lists one to three tokens, one a line. Services get
 * them all (the first signs); operators' commands send the first in x-shoal-token. A file
 * Shoal cannot use is a ConfigError naming the flag and the problem, never the token.
 */
import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@shoal/core';
import { readToken, readTokens } from '../src/flags.js';

const OLD = 'flag-old-token-0123456789abcdef';
const NEW = 'flag-new-token-fedcba9876543210';

test('services read every listed token, the signing one first; commands send the first', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-token-flag-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'token');
  await writeFile(file, `${OLD}\n`);
  t.deepEqual(await readTokens(file), [OLD]);
  t.is(await readToken(file), OLD);
  await writeFile(file, `${NEW}\n\n  ${OLD}\n`);
  t.deepEqual(await readTokens(file), [NEW, OLD]);
  t.is(await readToken(file), NEW);
  t.is(await readTokens(undefined), undefined, 'no file: the cluster runs open');
});

test('a file Shoal cannot use stops the start with what is wrong in it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-token-flag-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'token');
  const cases: Array<[string, string]> = [
    [`${OLD}\n${NEW}\n${OLD}x\n${NEW}x\n`, 'holds 4 tokens; list at most 3 (one a line, the first signs)'],
    [`${OLD}\nshort\n`, 'line 2 holds 5 characters; use at least 16 (e.g. openssl rand -hex 32)'],
    [`${OLD}\n${OLD}\n`, 'lists the same token twice (lines 1 and 2)'],
    ['\n', 'holds no token; write one of at least 16 characters (e.g. openssl rand -hex 32)'],
  ];
  for (const [text, problem] of cases) {
    await writeFile(file, text);
    const err = await t.throwsAsync(readTokens(file), { instanceOf: ConfigError });
    t.deepEqual(err?.problems, [`--token-file: ${file} ${problem}`]);
    t.false(err?.message.includes(OLD));
  }
  await t.throwsAsync(readTokens(join(dir, 'missing')), { instanceOf: ConfigError, message: /--token-file: cannot read / });
});
