import { join } from 'node:path';
import { createLogger, type Logger } from '@shoal/core';
import { startNodeAgent, startSupernode, writeContainerdConfig, type NodeAgentOptions, type Running, type SupernodeOptions, type RunningNodeAgent } from '@shoal/cli';
import { makeTempDir, removeTempDir, startContainerd, startRegistry, type RunningContainerd, type RunningRegistry, type StartRegistryOptions } from '@shoal/testkit';
import { startThrottledRelay, type ThrottledRelay } from './throttled-relay.js';

/** Shoal's logs in tests: silent unless SHOAL_TEST_LOG names a level (then JSON on stderr). */
export function testLogger(): Logger {
  return createLogger({ name: 'shoal-e2e', level: process.env.SHOAL_TEST_LOG ?? 'silent' });
}

export interface TestNode {
  agent: RunningNodeAgent;
  containerd: RunningContainerd;
}

export interface TestCluster {
  registry: RunningRegistry;
  /** Where the supernode and the nodes reach the registry: its own host, or the throttled relay's (`registryBytesPerSecond`). */
  registryHost: string;
  /** The throttled relay (with `registryBytesPerSecond`). */
  relay: ThrottledRelay | undefined;
  supernode: Running;
  nodes: TestNode[];
  dir: string;
  log: Logger;
  close(): Promise<void>;
}

/**
 * A real cluster on loopback: one docker-registry, one supernode and `nodes`
 * node agents, each with its own real containerd whose hosts.toml (written by
 * `shoal containerd-config`) points at that node's proxy.
 */
export interface ClusterOptions {
  nodes: number;
  registry?: StartRegistryOptions;
  /** The supernode and the nodes reach the registry through a relay that passes its answers at this rate per connection (pull with `registryHost`). */
  registryBytesPerSecond?: number;
  /** Extra options for the node agents (rate limits, DHT...), or per node given the ones started before. */
  node?: Partial<NodeAgentOptions> | ((index: number, before: readonly TestNode[]) => Partial<NodeAgentOptions>);
  /** Extra options for the in-process supernode (fetch slots...). */
  supernode?: Partial<SupernodeOptions>;
  /** Use this supernode (e.g. a process a test will kill) instead of starting one in-process. */
  supernodeUrl?: (registry: RunningRegistry, dir: string) => Promise<Running>;
}

export async function startCluster(options: ClusterOptions): Promise<TestCluster> {
  const dir = await makeTempDir('shoal-e2e');
  const log = testLogger();
  const closers: Array<() => Promise<void>> = [];
  const close = async (): Promise<void> => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    await removeTempDir(dir);
  };
  try {
    const registry = await startRegistry(options.registry ?? {});
    closers.push(() => registry.stop());
    let registryHost = registry.host;
    let relay: ThrottledRelay | undefined;
    if (options.registryBytesPerSecond !== undefined) {
      const started = await startThrottledRelay(Number(new URL(`http://${registry.host}`).port), options.registryBytesPerSecond);
      closers.push(() => started.close());
      registryHost = started.host;
      relay = started;
    }
    const supernode =
      options.supernodeUrl === undefined
        ? await startSupernode(log.child({ role: 'supernode' }), {
            listen: '127.0.0.1:0',
            dataDir: join(dir, 'supernode'),
            plainHttpHosts: [registryHost],
            token: undefined,
            ...options.supernode,
          })
        : await options.supernodeUrl(registry, dir);
    closers.push(() => supernode.close());
    const nodes: TestNode[] = [];
    for (let i = 0; i < options.nodes; i++) {
      const agent = await startNodeAgent(log.child({ role: `node${i}` }), {
        supernodeUrls: [supernode.url],
        peerListen: '127.0.0.1:0',
        advertise: undefined,
        dataDir: join(dir, `node${i}`),
        token: undefined,
        proxyListen: '127.0.0.1:0',
        plainHttpHosts: [registryHost],
        ...(typeof options.node === 'function' ? options.node(i, nodes) : options.node),
      });
      closers.push(() => agent.close());
      const containerd = await startContainerd({ name: `node${i}` });
      closers.push(() => containerd.stop());
      await writeContainerdConfig({ certsDir: containerd.hostsDir, proxyUrl: agent.proxyUrl, registries: [], plainHttpHosts: [registryHost] });
      nodes.push({ agent, containerd });
    }
    return { registry, registryHost, relay, supernode, nodes, dir, log, close };
  } catch (err) {
    await close();
    throw err;
  }
}
