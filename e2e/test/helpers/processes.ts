import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { answersOnOwnPorts, freePort, httpOk, minimalEnv, spawnProcess, waitFor, type ManagedProcess } from '@shoal/testkit';
import { NODE_FLAGS } from '@shoal/cli';

export { httpOk };

export const SHOAL = fileURLToPath(new URL('../../../../services/shoal/bin/shoal.js', import.meta.url));


export interface ShoalProcess {
  process: ManagedProcess;
  url: string;
  /** SIGKILL: a crash, not a shutdown. */
  kill(): Promise<void>;
}

/** Attempts at a process whose freePort() port another process took before it could bind. */
const LISTEN_ATTEMPTS = 3;

/**
 * Spawns a Shoal process on fresh free ports and waits until it is ready, retrying with new
 * ports when another process took one first. Ready means `/readyz` answers on the first port
 * it listens on and this process holds every one: an answer alone may come from another
 * test's server.
 */
async function startedOnFreePorts(
  portCount: number,
  launch: (ports: number[]) => Promise<{ process: ManagedProcess; listens: number[] }>,
): Promise<{ running: ShoalProcess; ports: number[] }> {
  for (let attempt = 1; ; attempt++) {
    const ports: number[] = [];
    for (let i = 0; i < portCount; i++) ports.push(await freePort());
    const { process: p, listens } = await launch(ports);
    const url = `http://127.0.0.1:${listens[0]}`;
    try {
      await waitFor(answersOnOwnPorts(p, `${url}/readyz`, listens), { process: p, description: `${p.name} ready`, timeoutMs: 20_000 });
    } catch (err) {
      await p.stop();
      if (attempt < LISTEN_ATTEMPTS && /EADDRINUSE/.test(await p.tail())) continue;
      throw err;
    }
    return { running: shoalProcess(p, url), ports };
  }
}

function shoalProcess(p: ManagedProcess, url: string): ShoalProcess {
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
  const { running } = await startedOnFreePorts(
    1,
    async ([port]) => ({
      process: await spawnProcess({
        name,
        command: process.execPath,
        args: [...NODE_FLAGS, SHOAL, 'supernode'],
        env: minimalEnv({ SHOAL_LISTEN: `127.0.0.1:${port}`, SHOAL_DATA: join(dir, name), SHOAL_PLAIN_HTTP: plainHttp, SHOAL_LOG_LEVEL: process.env.SHOAL_TEST_LOG ?? 'warn', ...extraEnv }),
        logDir: dir,
      }),
      listens: [port as number],
    }),
  );
  return running;
}

/** `shoal node` as its own process; `url` is its proxy. A SHOAL_PEER_LISTEN in `extraEnv` wins. */
export async function spawnNode(dir: string, name: string, supernodeUrl: string, plainHttp: string, extraEnv: Record<string, string> = {}): Promise<ShoalProcess & { peerUrl: string }> {
  const peerListenOn = (freePeerPort: number | undefined): string => extraEnv.SHOAL_PEER_LISTEN ?? `127.0.0.1:${freePeerPort}`;
  const { running, ports } = await startedOnFreePorts(
    2,
    async ([proxyPort, peerPort]) => {
      const peerListen = peerListenOn(peerPort);
      const agent = await spawnProcess({
        name,
        command: process.execPath,
        args: [...NODE_FLAGS, SHOAL, 'node'],
        env: minimalEnv({
          SHOAL_SUPERNODE: supernodeUrl,
          SHOAL_PROXY_LISTEN: `127.0.0.1:${proxyPort}`,
          SHOAL_PEER_LISTEN: peerListen,
          SHOAL_DATA: join(dir, name),
          SHOAL_PLAIN_HTTP: plainHttp,
          SHOAL_LOG_LEVEL: process.env.SHOAL_TEST_LOG ?? 'warn',
          ...extraEnv,
        }),
        logDir: dir,
      });
      return { process: agent, listens: [proxyPort as number, Number(peerListen.slice(peerListen.lastIndexOf(':') + 1))] };
    },
  );
  return { ...running, peerUrl: `http://${peerListenOn(ports[1])}` };
}
