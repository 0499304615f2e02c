// `simulate --runs K`: K seeds per point, their mean p50 to three decimals and its range,
// the figure two variants of the model are compared by.
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';

const run = promisify(execFile);
const SIMULATE = fileURLToPath(new URL('../simulate.js', import.meta.url));
const POINT = ['--nodes', '6', '--size-mib', '8', '--rate-mbit', '50', '--arrival-order', 'shuffled'];

/** The results files the runs wrote (load-tests/results/), removed when the tests end. */
const written: string[] = [];
test.after.always(async () => {
  await Promise.all(written.map((file) => rm(file, { force: true })));
});

/** One run of the simulator at POINT: what it printed, and the results file it wrote. */
async function simulate(args: readonly string[]): Promise<{ stdout: string; file: string | undefined }> {
  const { stdout } = await run(process.execPath, [SIMULATE, ...POINT, ...args], { timeout: 120_000 });
  const file = /wrote (\S+\.json)/.exec(stdout)?.[1];
  if (file !== undefined) written.push(file);
  return { stdout, file };
}

/** One seed's p50 at full precision, from the results file it wrote. */
async function p50Of(seed: number): Promise<number> {
  const { stdout, file } = await simulate(['--seed', String(seed)]);
  if (file === undefined) throw new Error(`no results file in:\n${stdout}`);
  const results = JSON.parse(await readFile(file, 'utf8')) as { rows: Array<{ p50: number }> };
  return results.rows[0]?.p50 as number;
}

test('--runs 3 gives the mean p50 of seeds 2, 3 and 4 and their range', async (t) => {
  const { stdout } = await simulate(['--seed', '2', '--runs', '3']);
  t.regex(stdout, /p50 × S\/B, mean of 3 seeds \(range\)/);
  const cells = stdout.split('\n').find((l) => l.startsWith('| 6 |'))?.split('|').map((c) => c.trim());
  const m = /^(\d\.\d{3}) \((\d\.\d{3})–(\d\.\d{3})\)$/.exec(cells?.[2] ?? '');
  if (m === null) return t.fail(`no p50 cell with a range in:\n${stdout}`);
  // One after another: results files are named by the millisecond they are written in.
  const p50s: number[] = [];
  for (const seed of [2, 3, 4]) p50s.push(await p50Of(seed));
  const fixed = (x: number): string => x.toFixed(3);
  t.is(m[1], fixed(p50s.reduce((a, b) => a + b, 0) / p50s.length));
  t.is(m[2], fixed(Math.min(...p50s)));
  t.is(m[3], fixed(Math.max(...p50s)));
  // The seeds differ, or the range would say nothing.
  t.true(new Set(p50s).size > 1, `p50s ${p50s.join(', ')}`);
});

test('--runs takes a positive integer', async (t) => {
  const error = await t.throwsAsync(simulate(['--runs', '0']));
  t.regex((error as Error & { stderr?: string }).stderr ?? '', /--runs: a positive integer, got 0/);
});
