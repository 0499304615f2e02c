import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveLogFormat } from '../src/logging.js';

const SHOAL = fileURLToPath(new URL('../../bin/shoal.js', import.meta.url));

/**
 * Starts `shoal supernode` (optionally under a pseudo-terminal, through util-linux
 * `script`), reads its output until the "supernode listening" line, then stops it.
 */
async function supernodeOutput(args: readonly string[], options: { tty?: boolean } = {}): Promise<{ output: string; code: number | null }> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-logfmt-'));
  const cli = [process.execPath, SHOAL, 'supernode', '--listen', '127.0.0.1:0', '--data', join(dir, 'data'), ...args];
  const quoted = cli.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = options.tty === true
    ? spawn('script', ['-qec', quoted, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    : spawn(cli[0] as string, cli.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (output += d.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 30_000;
  let code: number | null | undefined;
  void exited.then((c) => (code = c));
  while (!/supernode listening/.test(output) && code === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (code === undefined) process.kill(-(child.pid as number), 'SIGTERM');
  const finalCode = await exited;
  await rm(dir, { recursive: true, force: true });
  return { output, code: finalCode };
}

test('resolveLogFormat: the flag wins; without it, pretty on a terminal and JSON otherwise', (t) => {
  t.is(resolveLogFormat(undefined, true), 'pretty');
  t.is(resolveLogFormat(undefined, false), 'json');
  t.is(resolveLogFormat('json', true), 'json');
  t.is(resolveLogFormat('pretty', false), 'pretty');
  t.throws(() => resolveLogFormat('xml', false), { message: /--log-format: expected json or pretty, got "xml"/ });
});

test('shoal supernode logs JSON lines when its output is not a terminal', async (t) => {
  const { output } = await supernodeOutput([]);
  const first = output.split('\n')[0] ?? '';
  const line = JSON.parse(first) as { name: string; level: number; msg: string };
  t.is(line.name, 'shoal-supernode');
  t.regex(line.msg, /NO CLUSTER TOKEN/);
});

test('shoal supernode logs readable lines on a terminal, and with --log-format pretty', async (t) => {
  const tty = await supernodeOutput([], { tty: true });
  t.regex(tty.output, /\[\d\d:\d\d:\d\d\.\d{3}\] .*WARN.* \(shoal-supernode\): .*NO CLUSTER TOKEN/);
  t.notRegex(tty.output, /\{"level":/);
  const forced = await supernodeOutput(['--log-format', 'pretty']);
  t.regex(forced.output, /^\[\d\d:\d\d:\d\d\.\d{3}\] WARN \(shoal-supernode\): NO CLUSTER TOKEN/m, 'no colours when the output is not a terminal');
  t.regex(forced.output, /INFO \(shoal-supernode\): supernode listening\n\s+url: "http:\/\/127\.0\.0\.1:\d+"/);
});

test('an unknown --log-format is a configuration error (exit 2)', async (t) => {
  const { output, code } = await supernodeOutput(['--log-format', 'xml']);
  t.is(code, 2);
  t.regex(output, /--log-format: expected json or pretty, got "xml"/);
});
