// Regression: the benchmark and harness scripts threw ERR_PARSE_ARGS_UNKNOWN_OPTION on
// --help (only simulate knew it), so the only way to learn their flags was the source.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';

const run = promisify(execFile);
const SCRIPTS = ['bench-pull', 'bench-swarm', 'bench-cpu', 'bench-idle', 'simulate', 'soak', 'faults', 'swarm-timeline'];

for (const script of SCRIPTS) {
  test(`${script} --help prints its usage and exits 0`, async (t) => {
    const path = fileURLToPath(new URL(`../${script}.js`, import.meta.url));
    const { stdout } = await run(process.execPath, [path, '--help'], { timeout: 60_000 });
    t.regex(stdout, /^usage: npm run /);
    t.regex(stdout, /-h, --help/);
  });
}
