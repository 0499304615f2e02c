/**
 * Regression: without a token (the laptop default of `npm start`), the supernode listened
 * on 0.0.0.0:8002 and the peer on 0.0.0.0:65002, so anyone on the same network could read
 * every cached blob (private ones too) and join the swarm.
 *
 * Now an open cluster stays on loopback unless told otherwise; told to listen on every
 * interface it does, with a loud warning. With a token the defaults are unchanged.
 * The defaults are checked through the resolution the commands use (binding the real
 * default ports would collide with other runs); the warning with a real `shoal supernode`.
 */
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { silentLogger } from '@shoal/core';
import { DEFAULT_PEER_LISTEN, DEFAULT_PEER_LISTEN_OPEN, DEFAULT_SUPERNODE_LISTEN, DEFAULT_SUPERNODE_LISTEN_OPEN, isLoopbackHost, NODE_FLAGS, resolveListen } from '@shoal/cli';
import { makeTempDir, minimalEnv, removeTempDir, runCommand, spawnProcess, waitFor } from '@shoal/testkit';
import { SHOAL } from './helpers/processes.js';

test('without a token the supernode and the peer default to loopback; with one, to every interface', (t) => {
  const log = silentLogger();
  const supernode = { withToken: DEFAULT_SUPERNODE_LISTEN, open: DEFAULT_SUPERNODE_LISTEN_OPEN };
  const peer = { withToken: DEFAULT_PEER_LISTEN, open: DEFAULT_PEER_LISTEN_OPEN };
  t.is(resolveListen(undefined, undefined, supernode, '--listen', log), '127.0.0.1:8002');
  t.is(resolveListen(undefined, undefined, peer, '--peer-listen', log), '127.0.0.1:65002');
  t.is(resolveListen(undefined, 'a-token-of-enough-length', supernode, '--listen', log), '0.0.0.0:8002');
  t.is(resolveListen(undefined, 'a-token-of-enough-length', peer, '--peer-listen', log), '0.0.0.0:65002');
  t.is(resolveListen('0.0.0.0:9000', undefined, supernode, '--listen', log), '0.0.0.0:9000', 'asked for, it is done');
  for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '[::1]', '::1']) t.true(isLoopbackHost(host), host);
  for (const host of ['0.0.0.0', '::', '10.0.0.1', 'node-a']) t.false(isLoopbackHost(host), host);
});

test('the help says so, and `shoal supernode --listen 0.0.0.0:PORT` without a token warns loudly and serves', async (t) => {
  t.timeout(60_000);
  for (const command of ['supernode', 'node', 'all-in-one']) {
    const help = await runCommand(process.execPath, [SHOAL, command, '--help'], { env: minimalEnv() });
    t.regex(help.stdout, /127\.0\.0\.1:(8002|65002) without/, command);
  }
  const dir = await makeTempDir('shoal-open-listen');
  t.teardown(() => removeTempDir(dir));
  const p = await spawnProcess({
    name: 'supernode',
    command: process.execPath,
    args: [...NODE_FLAGS, SHOAL, 'supernode', '--listen', '0.0.0.0:0'],
    env: minimalEnv({ SHOAL_DATA: join(dir, 'data') }),
    logDir: dir,
  });
  t.teardown(async () => void (await p.stop()));
  let url: string | undefined;
  await waitFor(
    async () => {
      const out = await readFile(p.stdoutPath, 'utf8');
      url = /"url":"(http:\/\/[^"]+)","dataDir".*supernode listening/.exec(out)?.[1];
      return url !== undefined;
    },
    { process: p, description: 'supernode listening', timeoutMs: 30_000 },
  );
  const out = await readFile(p.stdoutPath, 'utf8');
  t.regex(out, /--listen 0\.0\.0\.0:0 WITHOUT A CLUSTER TOKEN: this port is OPEN beyond this machine/);
  const ready = await request(`${url ?? ''}/readyz`);
  await ready.body.dump();
  t.is(ready.statusCode, 200);
});
