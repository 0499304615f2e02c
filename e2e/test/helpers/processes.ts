import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, httpOk, minimalEnv, spawnProcess, waitFor, type ManagedProcess } from '@shoal/testkit';
import { NODE_FLAGS } from '@shoal/cli';

export { httpOk };

export const SHOAL = fileURLToPath(new URL('../../../../services/shoal/bin/shoal.js', import.meta.url));


export interface ShoalProcess {
  process: ManagedProcess;
  url: string;
  /** SIGKILL: a crash, not a shutdown. */
  kill(): Promise<void>;
}

async function started(p: ManagedProcess, url: string): Promise<ShoalProcess> {
  await waitFor(() => httpOk(`${url}/readyz`), { process: p, description: `${p.name} ready`, timeoutMs: 20_000 });
  return {
    process: p,
    url,
    async kill() {
      if (p.exitStatus() !== undefined) return;
      try {
        process.kill(-p.pid, 'SIGKILL');
      } catch {
        process.kill(p.pid, 'SIGKILL');
      }
      await p.exited;
    },
  };
}

/** `shoal supernode` as its own process, so a test can kill it for real. */
export async function spawnSupernode(dir: string, plainHttp: string, name = 'supernode', extraEnv: Record<string, string> = {}): Promise<ShoalProcess> {
  const port = await freePort();
  const p = await spawnProcess({
    name,
    command: process.execPath,
    args: [...NODE_FLAGS, SHOAL, 'supernode'],
    env: minimalEnv({ SHOAL_LISTEN: `127.0.0.1:${port}`, SHOAL_DATA: join(dir, name), SHOAL_PLAIN_HTTP: plainHttp, SHOAL_LOG_LEVEL: process.env.SHOAL_TEST_LOG ?? 'warn', ...extraEnv }),
    logDir: dir,
  });
  return started(p, `http://127.0.0.1:${port}`);
}

/** `shoal node` as its own process; `url` is its proxy. */
export async function spawnNode(dir: string, name: string, supernodeUrl: string, plainHttp: string, extraEnv: Record<string, string> = {}): Promise<ShoalProcess & { peerUrl: string }> {
  const [proxyPort, peerPort] = [await freePort(), await freePort()];
  const p = await spawnProcess({
    name,
    command: process.execPath,
    args: [...NODE_FLAGS, SHOAL, 'node'],
    env: minimalEnv({
      SHOAL_SUPERNODE: supernodeUrl,
      SHOAL_PROXY_LISTEN: `127.0.0.1:${proxyPort}`,
      SHOAL_PEER_LISTEN: `127.0.0.1:${peerPort}`,
      SHOAL_DATA: join(dir, name),
      SHOAL_PLAIN_HTTP: plainHttp,
      SHOAL_LOG_LEVEL: process.env.SHOAL_TEST_LOG ?? 'warn',
      ...extraEnv,
    }),
    logDir: dir,
  });
  const running = await started(p, `http://127.0.0.1:${proxyPort}`);
  return { ...running, peerUrl: `http://127.0.0.1:${peerPort}` };
}
