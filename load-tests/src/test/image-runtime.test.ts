// bench:swarm --shoal-runtime image runs the Shoal processes on the Node.js the image ships,
// taken from the image archive that `npm test` builds before any test starts.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import { imageNodeBinary } from '../lib/image-runtime.js';

const run = promisify(execFile);
const DOCKERFILE = fileURLToPath(new URL('../../../Dockerfile', import.meta.url));

test("the image's node binary is extracted once, runs here, and is the release the image is built on", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-image-runtime-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const first = await imageNodeBinary(dir);
  const declared = /^ARG NODE_VERSION=(\S+)$/m.exec(await readFile(DOCKERFILE, 'utf8'))?.[1];
  t.is(first.version, `v${String(declared)}`);
  const { stdout } = await run(first.path, ['-p', 'process.arch']);
  t.is(stdout.trim(), process.arch);
  const again = await imageNodeBinary(dir);
  t.deepEqual(again, first, 'the extracted binary is reused');
});

test('a missing image archive is a clear error', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-image-runtime-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await t.throwsAsync(imageNodeBinary(dir, join(dir, 'absent.oci.tar')), { message: /absent\.oci\.tar is missing: build the image first \(npm run image\)/ });
});
