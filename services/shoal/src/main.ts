import { arch, hostname, platform } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError,
  describeFlags,
  parseImageReference,
  type ConfigOf,
  type FlagSpecs,
  type Logger,
} from '@shoal/core';
import {
  DEFAULT_NODE_DATA,
  DEFAULT_PEER_LISTEN,
  DEFAULT_PEER_LISTEN_OPEN,
  DEFAULT_PROXY_LISTEN,
  DEFAULT_PROXY_URL,
  DEFAULT_SUPERNODE_DATA,
  DEFAULT_SUPERNODE_LISTEN,
  DEFAULT_SUPERNODE_LISTEN_OPEN,
  DEFAULT_CONTAINERD_SOCKET,
  logLevelFlag,
  plainHttpFlag,
  readTokens,
  tokenFileFlag,
  tokenGraceSecFlag,
  nodeNameFlag,
  resolveListen,
  resolveNodeName,
} from './flags.js';
import { commandLogger, logFormatFlag } from './logging.js';
import { httpBlobProvider, startNodeAgent, startPeer, startProxy, startSupernode, type AuthOptions, type CacheOptions, type PeerOptions } from './runtime.js';
import { DEFAULT_MAX_UPLOADS } from '@shoal/peer';
import { DEFAULT_CHAIN_MEMBERS, DEFAULT_MAX_CONCURRENT_FETCHES, defaultFetchesPerRegistry, MAX_CHAIN_MEMBERS } from '@shoal/supernode';
import { BACKUP_NAME, configureContainerd, restoreContainerdConfig } from './commands/containerd-config.js';
import { pullImage } from './commands/pull.js';
import { doctorFlags, runDoctorCommand } from './commands/doctor.js';
import { preheatCommand } from './commands/preheat.js';
import { statusCommand } from './commands/status.js';
import { defineCommand, type Command } from './command.js';

function defaultPlatform(): string {
  const goArch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };
  return `${platform()}/${goArch[arch()] ?? arch()}`;
}

function openClusterWarning(log: Logger, token: string | undefined): void {
  if (token === undefined) {
    log.warn('NO CLUSTER TOKEN (--token-file): this cluster runs OPEN — anyone who can reach these ports can read cached blobs and join the swarm. Listening on loopback unless told otherwise. Fine on a laptop, never in production.');
  }
}

const SUPERNODE_LISTEN = { withToken: DEFAULT_SUPERNODE_LISTEN, open: DEFAULT_SUPERNODE_LISTEN_OPEN };
const PEER_LISTEN = { withToken: DEFAULT_PEER_LISTEN, open: DEFAULT_PEER_LISTEN_OPEN };
const SUPERNODE_LISTEN_HELP = `listen address (default ${DEFAULT_SUPERNODE_LISTEN} with --token-file, ${DEFAULT_SUPERNODE_LISTEN_OPEN} without)`;
const PEER_LISTEN_HELP = `where other peers reach this peer (default ${DEFAULT_PEER_LISTEN} with --token-file, ${DEFAULT_PEER_LISTEN_OPEN} without)`;

/** The auth part of a service's options: the tokens (the first signs), their file (watched for rotations) and the grace. */
function authOptions(c: { tokenFile?: string | undefined; tokenGraceSec: number }, tokens: readonly string[] | undefined): AuthOptions {
  return { token: tokens?.[0], acceptedTokens: tokens?.slice(1), tokenFile: c.tokenFile, tokenGraceMs: c.tokenGraceSec * 1000 };
}

/** Runs until SIGINT/SIGTERM, then closes everything and exits. */
function untilSignal(log: Logger, close: () => Promise<void>): void {
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

const outageFlags = {
  firstByteTimeoutSec: { kind: 'integer', help: 'how long the swarm may take to start a blob before the proxy streams it from the registry', default: 30, min: 1, max: 600 },
  staleIfErrorSec: { kind: 'integer', help: "while the registry is down, answer a tag from its last known digest if it is at most this old (0: never)", default: 86_400, min: 0 },
  grantMemorySec: { kind: 'integer', help: "while the registry is down, serve blobs from the swarm to credentials granted them within this window (0: never)", default: 3_600, min: 0 },
} satisfies FlagSpecs;

const cacheFlags = {
  cacheQuotaBytes: { kind: 'integer', help: 'disk quota of the cache, bytes (unset: no quota; LRU eviction of whole idle blobs above it)', min: 1 },
  cacheHighWatermarkPercent: { kind: 'integer', help: 'eviction starts above this % of the quota', default: 90, min: 1, max: 100 },
  cacheLowWatermarkPercent: { kind: 'integer', help: 'eviction stops below this % of the quota', default: 75, min: 1, max: 100 },
  cacheVerifyOnOpen: { kind: 'string', help: 'none | complete: re-hash complete blobs at start', default: 'none' },
} satisfies FlagSpecs;

function cacheOptions(c: ConfigOf<typeof cacheFlags>): CacheOptions {
  const verify = c.cacheVerifyOnOpen;
  const verifyOnOpen = verify === 'none' || verify === 'complete' ? verify : undefined;
  const problems: string[] = [];
  if (verifyOnOpen === undefined) problems.push(`--cache-verify-on-open: expected none or complete, got ${JSON.stringify(verify)}`);
  if (c.cacheLowWatermarkPercent >= c.cacheHighWatermarkPercent) problems.push('--cache-low-watermark-percent must be below --cache-high-watermark-percent');
  if (problems.length > 0 || verifyOnOpen === undefined) throw new ConfigError(problems);
  return {
    quotaBytes: c.cacheQuotaBytes,
    highWatermark: c.cacheHighWatermarkPercent / 100,
    lowWatermark: c.cacheLowWatermarkPercent / 100,
    verifyOnOpen,
  };
}

const peerFlags = {
  ...cacheFlags,
  supernode: { kind: 'urlList', help: 'supernode URL(s), comma-separated', required: true },
  peerListen: { kind: 'hostPort', help: PEER_LISTEN_HELP },
  advertise: { kind: 'url', help: 'URL other peers use to reach this one: http(s)://HOST:PORT, no path (default: the listen address, or the first non-loopback address for a wildcard)' },
  data: { kind: 'path', help: "the node's piece store", default: DEFAULT_NODE_DATA },
  zone: { kind: 'string', help: 'topology zone (e.g. topology.kubernetes.io/zone); parents in the same zone are preferred' },
  nodeName: nodeNameFlag,
  maxUploads: { kind: 'integer', help: 'pieces served to other peers at once', default: DEFAULT_MAX_UPLOADS, min: 1, max: 1024 },
  uploadBytesPerSec: { kind: 'integer', help: 'upload rate limit to other peers, bytes/s (0 = none)', default: 0, min: 0 },
  downloadBytesPerSec: { kind: 'integer', help: 'download rate limit from the swarm, bytes/s (0 = none)', default: 0, min: 0 },
  dhtListen: { kind: 'hostPort', help: 'UDP address of this node\'s DHT, used to find peers when no supernode answers (unset: no DHT)' },
  dhtBootstrap: { kind: 'hostPortList', help: 'other nodes\' DHT addresses (HOST:PORT, repeatable)', default: [] },
  tokenFile: tokenFileFlag,
  tokenGraceSec: tokenGraceSecFlag,
  logLevel: logLevelFlag,
  logFormat: logFormatFlag,
} satisfies FlagSpecs;

function peerOptions(c: ConfigOf<typeof peerFlags & { plainHttp: typeof plainHttpFlag }>, tokens: readonly string[] | undefined, log: Logger): PeerOptions {
  const token = tokens?.[0];
  return {
    ...cacheOptions(c),
    supernodeUrls: c.supernode,
    peerListen: resolveListen(c.peerListen, token, PEER_LISTEN, '--peer-listen', log),
    advertise: c.advertise,
    dataDir: c.data,
    ...authOptions(c, tokens),
    plainHttpHosts: c.plainHttp,
    zone: c.zone,
    nodeName: resolveNodeName(c.nodeName, hostname()),
    maxUploads: c.maxUploads,
    uploadBytesPerSec: c.uploadBytesPerSec,
    downloadBytesPerSec: c.downloadBytesPerSec,
    dhtListen: c.dhtListen,
    dhtBootstrap: c.dhtBootstrap,
  };
}

const commands: Record<string, Command> = {
  supernode: defineCommand({
    summary: 'cluster cache of registry blobs, piece API and peer membership',
    flags: {
      listen: { kind: 'hostPort', help: SUPERNODE_LISTEN_HELP },
      data: { kind: 'path', help: 'cache and metadata directory', default: DEFAULT_SUPERNODE_DATA },
      plainHttp: plainHttpFlag,
      maxFetchesPerRegistry: { kind: 'integer', help: 'blobs fetched from one registry at once, besides blobs of 1 MiB or less (raise it for a registry that limits the rate of each connection)', default: defaultFetchesPerRegistry(), min: 1, max: DEFAULT_MAX_CONCURRENT_FETCHES },
      chainMembers: { kind: 'integer', help: "experimental: schedule a blob's swarm of 2 to N nodes as a chain, each node fetching from the one before it (0: off; see docs/architecture.md)", default: DEFAULT_CHAIN_MEMBERS, min: 0, max: MAX_CHAIN_MEMBERS },
      ...cacheFlags,
      tokenFile: tokenFileFlag,
      tokenGraceSec: tokenGraceSecFlag,
      logLevel: logLevelFlag,
      logFormat: logFormatFlag,
      imagePullJobs: { kind: 'boolean', help: 'run the ImagePullJob and ImageListPullJob controller (every replica may: one leads, through a coordination.k8s.io Lease)', default: false },
      kubeconfig: { kind: 'path', help: 'kubeconfig for the ImagePullJob controller (unset: the pod\'s in-cluster config)' },
      namespace: { kind: 'string', help: 'watch ImagePullJobs in this namespace only (unset: all namespaces)' },
      leaderElectionNamespace: { kind: 'string', help: "namespace of the controller's leader Lease shoal-image-pull-jobs (unset: the pod's namespace, else --namespace, else default)" },
    },
    async run(c) {
      const log = commandLogger('shoal-supernode', c);
      const tokens = await readTokens(c.tokenFile);
      const token = tokens?.[0];
      openClusterWarning(log, token);
      const imagePullJobs = c.imagePullJobs === true ? { kubeconfig: c.kubeconfig, namespace: c.namespace, leaderElectionNamespace: c.leaderElectionNamespace } : undefined;
      const listen = resolveListen(c.listen, token, SUPERNODE_LISTEN, '--listen', log);
      const running = await startSupernode(log, { ...cacheOptions(c), listen, dataDir: c.data, plainHttpHosts: c.plainHttp, maxFetchesPerRegistry: c.maxFetchesPerRegistry, chainMembers: c.chainMembers, ...authOptions(c, tokens), imagePullJobs });
      untilSignal(log, () => running.close());
    },
  }),
  node: defineCommand({
    summary: 'a peer and a registry proxy (containerd mirror) in one process',
    flags: {
      ...peerFlags,
      proxyListen: { kind: 'hostPort', help: 'where containerd reaches the proxy (keep it on loopback)', default: DEFAULT_PROXY_LISTEN },
      plainHttp: plainHttpFlag,
      ...outageFlags,
      containerdSocket: { kind: 'path', help: 'containerd\'s CRI socket: prewarm (preheat --nodes, ImagePullJob) has containerd pull the image through it once this node\'s store holds the blobs', default: DEFAULT_CONTAINERD_SOCKET },
    },
    async run(c) {
      const log = commandLogger('shoal-node', c);
      const tokens = await readTokens(c.tokenFile);
      const token = tokens?.[0];
      openClusterWarning(log, token);
      const agent = await startNodeAgent(log, {
        ...peerOptions(c, tokens, log),
        containerdSocket: c.containerdSocket,
        proxyListen: c.proxyListen,
        plainHttpHosts: c.plainHttp,
        staleIfErrorMs: c.staleIfErrorSec * 1000,
        grantMemoryMs: c.grantMemorySec * 1000,
        firstByteTimeoutMs: c.firstByteTimeoutSec * 1000,
      });
      untilSignal(log, () => agent.close());
    },
  }),
  peer: defineCommand({
    summary: 'the peer half of `node`, alone',
    flags: { ...peerFlags, plainHttp: plainHttpFlag },
    async run(c) {
      const log = commandLogger('shoal-peer', c);
      const tokens = await readTokens(c.tokenFile);
      const token = tokens?.[0];
      openClusterWarning(log, token);
      const running = await startPeer(log, peerOptions(c, tokens, log));
      untilSignal(log, () => running.close());
    },
  }),
  proxy: defineCommand({
    summary: 'the proxy half of `node`, alone (talks to its peer over HTTP)',
    flags: {
      proxyListen: { kind: 'hostPort', help: 'where containerd reaches the proxy', default: DEFAULT_PROXY_LISTEN },
      peer: { kind: 'url', help: "this node's peer", default: 'http://127.0.0.1:65002' },
      plainHttp: plainHttpFlag,
      ...outageFlags,
      tokenFile: tokenFileFlag,
      tokenGraceSec: tokenGraceSecFlag,
      logLevel: logLevelFlag,
      logFormat: logFormatFlag,
    },
    async run(c) {
      const log = commandLogger('shoal-proxy', c);
      const tokens = await readTokens(c.tokenFile);
      const running = await startProxy(log, {
        proxyListen: c.proxyListen,
        plainHttpHosts: c.plainHttp,
        blobs: httpBlobProvider(log, c.peer, authOptions(c, tokens)),
        staleIfErrorMs: c.staleIfErrorSec * 1000,
        grantMemoryMs: c.grantMemorySec * 1000,
        firstByteTimeoutMs: c.firstByteTimeoutSec * 1000,
      });
      untilSignal(log, () => running.close());
    },
  }),
  'containerd-config': defineCommand({
    summary: "write hosts.toml per registry (and _default) pointing containerd at the proxy, keeping the node's own hosts.toml after it",
    flags: {
      certsDir: { kind: 'path', help: "containerd's config_path, e.g. /etc/containerd/certs.d", required: true },
      proxy: { kind: 'url', help: "the node's proxy", default: DEFAULT_PROXY_URL },
      registry: { kind: 'stringList', help: 'registries to mirror (repeatable); _default covers the rest', default: ['docker.io'] },
      plainHttp: plainHttpFlag,
      restore: { kind: 'boolean', help: "undo: put back the node's own hosts.toml files and remove those this command created", default: false },
    },
    async run(c) {
      const certsDir = c.certsDir;
      if (c.restore) {
        const restored = await restoreContainerdConfig(certsDir);
        for (const r of restored) process.stdout.write(`${r.action} ${r.file}\n`);
        if (restored.length === 0) process.stdout.write(`nothing to restore in ${certsDir}\n`);
        return;
      }
      const { written, warnings } = await configureContainerd({
        certsDir,
        proxyUrl: c.proxy,
        registries: c.registry,
        plainHttpHosts: c.plainHttp,
      });
      for (const w of written) process.stdout.write(`${w.action === 'merged' ? `merged (the node's own entries kept after the proxy; original in ${BACKUP_NAME})` : 'wrote'} ${w.file}\n`);
      for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
      process.stdout.write(
        `containerd must have config_path = "${certsDir}" set\n` +
          '  (1.6/1.7: [plugins."io.containerd.grpc.v1.cri".registry]; 2.x: [plugins."io.containerd.cri.v1.images".registry]);\n' +
          '  turning config_path on needs one containerd restart, edits to hosts.toml do not.\n',
      );
    },
  }),
  pull: defineCommand({
    summary: 'fetch an image through the swarm (into this node\'s cache), with progress',
    positionals: { min: 1, max: 1, names: 'IMAGE' },
    flags: {
      proxy: { kind: 'url', help: "the node's proxy", default: DEFAULT_PROXY_URL },
      platform: { kind: 'string', help: 'OS/ARCH for multi-arch images', default: defaultPlatform() },
    },
    async run(c, [imageText]) {
      const image = parseImageReference(imageText ?? '');
      const result = await pullImage({
        proxyUrl: c.proxy,
        image,
        platform: c.platform,
        onProgress: (e) => {
          if (e.kind === 'blob') {
            const mibps = e.bytes / 1048576 / Math.max(e.durationMs / 1000, 0.001);
            process.stdout.write(`${e.digest.slice(0, 19)}  ${(e.bytes / 1048576).toFixed(1).padStart(8)} MiB  ${e.source.padEnd(9)} ${mibps.toFixed(0).padStart(5)} MiB/s\n`);
          }
        },
      });
      process.stdout.write(`pulled ${imageText} (${result.manifestDigest}): ${(result.totalBytes / 1048576).toFixed(1)} MiB in ${(result.durationMs / 1000).toFixed(2)} s\n`);
    },
  }),
  preheat: defineCommand(preheatCommand),
  status: defineCommand(statusCommand),
  doctor: defineCommand({
    summary: "check this node's wiring: containerd config_path, hosts.toml, proxy up, a test fetch through the swarm",
    flags: doctorFlags(defaultPlatform()),
    run: (c) => runDoctorCommand(c),
  }),
  'all-in-one': defineCommand({
    summary: 'a supernode and a node agent on this machine (what `npm start` runs)',
    flags: {
      listen: { kind: 'hostPort', help: `supernode ${SUPERNODE_LISTEN_HELP}` },
      proxyListen: { kind: 'hostPort', help: 'proxy listen address', default: DEFAULT_PROXY_LISTEN },
      peerListen: { kind: 'hostPort', help: `peer ${PEER_LISTEN_HELP}` },
      data: { kind: 'path', help: 'data directory', default: './.shoal' },
      plainHttp: plainHttpFlag,
      tokenFile: tokenFileFlag,
      tokenGraceSec: tokenGraceSecFlag,
      logLevel: logLevelFlag,
      logFormat: logFormatFlag,
    },
    async run(c) {
      const log = commandLogger('shoal', c);
      const tokens = await readTokens(c.tokenFile);
      const token = tokens?.[0];
      openClusterWarning(log, token);
      const data = c.data;
      const plainHttpHosts = c.plainHttp;
      const listen = resolveListen(c.listen, token, SUPERNODE_LISTEN, '--listen', log);
      const peerListen = resolveListen(c.peerListen, token, PEER_LISTEN, '--peer-listen', log);
      const supernode = await startSupernode(log, { listen, dataDir: join(data, 'supernode'), plainHttpHosts, ...authOptions(c, tokens) });
      const agent = await startNodeAgent(log, {
        supernodeUrls: [supernode.url],
        peerListen,
        advertise: undefined,
        dataDir: join(data, 'node'),
        ...authOptions(c, tokens),
        proxyListen: c.proxyListen,
        plainHttpHosts,
      });
      process.stderr.write(
        `\nShoal is running: supernode ${supernode.url}, containerd mirror ${agent.proxyUrl}.\n` +
          `Point containerd at it:  node services/shoal/bin/shoal.js containerd-config --certs-dir /etc/containerd/certs.d --proxy ${agent.proxyUrl}\n` +
          `Or try it without containerd:  node services/shoal/bin/shoal.js pull --proxy ${agent.proxyUrl} docker.io/library/alpine:latest\n\n`,
      );
      untilSignal(log, async () => {
        await agent.close();
        await supernode.close();
      });
    },
  }),
};

function usage(): string {
  const lines = ['usage: shoal <command> [flags]', '', 'commands:'];
  for (const [name, cmd] of Object.entries(commands)) lines.push(`  ${name.padEnd(18)} ${cmd.summary}`);
  lines.push('', 'Every flag also reads SHOAL_<FLAG> from the environment. `shoal <command> --help` lists its flags.');
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (command === undefined) {
    process.stderr.write(`shoal: unknown command ${JSON.stringify(name)}\n\n${usage()}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`shoal ${name}: ${command.summary}\n\n${describeFlags(command.flags)}\n`);
    return 0;
  }
  try {
    await command.start(rest, process.env);
    return -1; // long-running commands keep the process alive; one-shot ones exit below
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`shoal ${name}: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`shoal ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

const ONE_SHOT = new Set(['containerd-config', 'doctor', 'pull', 'preheat', 'status']);
const code = await main(process.argv.slice(2));
if (code >= 0) process.exit(code);
else if (ONE_SHOT.has(process.argv[2] ?? '')) process.exit(0);
