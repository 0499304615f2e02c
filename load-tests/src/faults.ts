/**
 * `npm run faults` — the fault-injection suite. Several images are pulled over
 * and over by several nodes (real containerd each, hosts.toml by `shoal
 * containerd-config`), while a chaos loop SIGKILLs a random component — a
 * supernode, a node agent, or the registry itself — and starts it again a few
 * seconds later. A pull that fails is retried with backoff, as kubelet does.
 * Every completed pull is checked by containerd (digests, unpack). The report
 * says what was injected and what survived.
 * Options: --minutes N (default 3), --nodes N (default 3), --supernodes N (default 2).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeContainerdConfig } from '@shoal/cli';
import {
  buildImage,
  makeTempDir,
  minimalEnv,
  pushImage,
  removeTempDir,
  requireTools,
  spawnProcess,
  startContainerd,
  startRegistry,
  waitFor,
  type ManagedProcess,
  type RunningContainerd,
} from '@shoal/testkit';
import { httpOk, ServiceProcess } from './lib/shoal-processes.js';

const MiB = 1024 * 1024;
const USAGE = `usage: npm run faults -- [options]
  --minutes N      how long the chaos loop runs (3)
  --nodes N        node agents, each with its own containerd (3)
  --supernodes N   supernodes (2)
  --seed X         random seed of the chaos loop (1)
  -h, --help       this text
`;
const { values: args } = parseArgs({
  options: { minutes: { type: 'string', default: '3' }, nodes: { type: 'string', default: '3' }, supernodes: { type: 'string', default: '2' }, seed: { type: 'string', default: '1' }, help: { type: 'boolean', short: 'h', default: false } },
});
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const durationMs = Number(args.minutes) * 60_000;
const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));
/** Attempts per pull before it counts as failed (kubelet would go on for ever). */
const MAX_ATTEMPTS = 8;

let rngState = Number(args.seed) >>> 0 || 1;
function random(): number {
  // xorshift32: reproducible chaos for a given --seed
  rngState ^= rngState << 13;
  rngState ^= rngState >>> 17;
  rngState ^= rngState << 5;
  return (rngState >>> 0) / 4294967296;
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Victim {
  name: string;
  kill(): Promise<void>;
  start(): Promise<void>;
}

async function main(): Promise<void> {
  await requireTools(['containerd', 'ctr', 'docker-registry', 'skopeo']);
  const dir = await makeTempDir('shoal-faults');
  const log = (m: string): void => void process.stderr.write(`[faults] ${m}\n`);
  const registry = await startRegistry();
  let registryProcess: ManagedProcess = registry.process;
  const services: ServiceProcess[] = [];
  const containerds: RunningContainerd[] = [];
  try {
    const refs: string[] = [];
    for (let i = 0; i < 4; i++) {
      const image = await buildImage({ dir: join(dir, `layout${i}`), tag: 'v1', layers: [{ sizeBytes: (4 + i * 2) * MiB, seed: `faults-${i}` }, { sizeBytes: 2 * MiB, seed: 'faults-shared' }] });
      await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: `faults/img${i}` });
      refs.push(`${registry.host}/faults/img${i}:v1`);
    }
    const supernodes: ServiceProcess[] = [];
    for (let i = 0; i < Number(args.supernodes); i++) {
      const s = await ServiceProcess.supernode(dir, `supernode${i}`, registry.host);
      await s.start();
      supernodes.push(s);
      services.push(s);
    }
    const nodes: ServiceProcess[] = [];
    for (let i = 0; i < Number(args.nodes); i++) {
      const n = await ServiceProcess.node(dir, `node${i}`, supernodes.map((s) => s.url), registry.host);
      await n.start();
      nodes.push(n);
      services.push(n);
      const c = await startContainerd({ name: `faults-node${i}` });
      containerds.push(c);
      await writeContainerdConfig({ certsDir: c.hostsDir, proxyUrl: n.url, registries: [], plainHttpHosts: [registry.host] });
    }
    const victims: Victim[] = [
      ...services.map((s) => ({ name: s.name, kill: () => s.kill(), start: () => s.start() })),
      {
        name: 'registry',
        kill: async () => {
          try {
            process.kill(-registryProcess.pid, 'SIGKILL');
          } catch {
            process.kill(registryProcess.pid, 'SIGKILL');
          }
          await registryProcess.exited;
        },
        start: async () => {
          registryProcess = await spawnProcess({ name: 'registry', command: 'docker-registry', args: ['serve', registry.configPath], env: minimalEnv(), logDir: dir });
          await waitFor(() => httpOk(`${registry.url}/v2/`), { process: registryProcess, description: 'registry back', timeoutMs: 30_000 });
        },
      },
    ];

    const injected = new Map<string, number>();
    const started = Date.now();
    let stopping = false;
    const chaos = (async () => {
      while (!stopping) {
        await sleep(2_000 + random() * 4_000);
        if (stopping) break;
        const victim = victims[Math.floor(random() * victims.length)] as Victim;
        await victim.kill();
        injected.set(victim.name, (injected.get(victim.name) ?? 0) + 1);
        log(`killed ${victim.name} at ${((Date.now() - started) / 1000).toFixed(1)} s`);
        await sleep(1_000 + random() * 3_000);
        await victim.start();
      }
    })();

    const outcomes = { completed: 0, completedAfterRetry: 0, failed: 0, attempts: 0 };
    const failures: string[] = [];
    await Promise.all(
      containerds.map(async (c, i) => {
        let k = i;
        while (Date.now() - started < durationMs) {
          const ref = refs[k++ % refs.length] as string;
          let ok = false;
          let last = '';
          for (let attempt = 1; attempt <= MAX_ATTEMPTS && !ok; attempt++) {
            outcomes.attempts++;
            const pull = await c.pull(ref, { check: false, timeoutMs: 120_000 });
            ok = pull.code === 0 && (await c.imageUnpacked(ref));
            if (!ok) {
              last = pull.stderr.split('\n').filter((l) => l.includes('ctr:') || l.includes('error')).slice(-1)[0] ?? `exit ${pull.code}`;
              await sleep(Math.min(10_000, 500 * 2 ** attempt));
            } else if (attempt > 1) outcomes.completedAfterRetry++;
          }
          if (ok) outcomes.completed++;
          else {
            outcomes.failed++;
            failures.push(`${c.name} ${ref}: ${last}`);
          }
          // Forget the image and its content so the next round fetches again.
          await c.ctr(['images', 'rm', ref]);
          const digests = [...(await c.contentDigests())];
          if (digests.length > 0) await c.ctr(['content', 'rm', ...digests]);
        }
      }),
    );
    stopping = true;
    await chaos;

    // Only the chaos loop may end a service: any other exit is a crash, whatever the pulls did.
    const crashes = services.flatMap((s) => s.crashes);
    const result = { date: new Date().toISOString(), minutes: Number(args.minutes), seed: Number(args.seed), injected: Object.fromEntries(injected), ...outcomes, failures, crashes };
    await mkdir(RESULTS_DIR, { recursive: true });
    await writeFile(join(RESULTS_DIR, `faults-${result.date.replace(/[:.]/g, '-')}.json`), `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(
      [
        `fault injection, ${args.minutes} min, seed ${args.seed}:`,
        `injected: ${[...injected].map(([k, v]) => `${k} ×${v}`).join(', ') || 'nothing'}`,
        `pulls completed: ${outcomes.completed} (${outcomes.completedAfterRetry} after a retry), failed after ${MAX_ATTEMPTS} attempts: ${outcomes.failed}, attempts: ${outcomes.attempts}`,
        ...failures.slice(0, 10).map((f) => `failed: ${f}`),
        `services that exited on their own (crashes): ${crashes.length}`,
        ...crashes.slice(0, 5).map((c) => `crash: ${c.name} (${c.exit})\n${c.tail}`),
        '',
      ].join('\n'),
    );
    if (outcomes.failed > 0 || crashes.length > 0) process.exitCode = 1;
  } finally {
    for (const c of containerds) await c.stop().catch(() => undefined);
    for (const s of services) await s.stop().catch(() => undefined);
    await registryProcess.stop().catch(() => undefined);
    await registry.stop().catch(() => undefined);
    await removeTempDir(dir);
  }
}

await main();
