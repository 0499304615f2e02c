import test from 'ava';
import { fileURLToPath } from 'node:url';
import { minimalEnv, requireTools, runCommand, type RunResult } from '@shoal/testkit';
import { startOpsSwarm, type OpsSwarm } from './helpers/ops-swarm.js';

const K6_DIR = fileURLToPath(new URL('../../../load-tests/k6/', import.meta.url));
/** The k6 SHIM (not k6: no k6 binary exists here), which implements only the k6 APIs the scripts use. */
const SHIM = `${K6_DIR}shim/k6-shim.mjs`;

interface ShimSummary {
  interrupted: number;
  failedThresholds: number;
  checks: Record<string, { passes: number; fails: number }>;
  metrics: Record<string, { kind: string; count: number; sum: number }>;
}

async function k6Shim(script: string, env: Record<string, string>): Promise<RunResult & { summary: ShimSummary }> {
  const args = ['run', ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]), `${K6_DIR}${script}`];
  const run = await runCommand(process.execPath, [SHIM, ...args], { env: minimalEnv(), timeoutMs: 120_000 });
  const line = run.stdout.split('\n').find((l) => l.startsWith('SHIM_SUMMARY '));
  if (line === undefined) throw new Error(`no summary from the shim (exit ${run.code}):\n${run.stdout}\n${run.stderr}`);
  return { ...run, summary: JSON.parse(line.slice('SHIM_SUMMARY '.length)) as ShimSummary };
}

function allChecksPassed(t: { deepEqual: (a: unknown, b: unknown, m?: string) => void }, summary: ShimSummary): void {
  const failed = Object.entries(summary.checks).filter(([, c]) => c.fails > 0).map(([name]) => name);
  t.deepEqual(failed, [], 'no check failed');
}

let swarm: OpsSwarm;
test.before(async () => {
  await requireTools(['docker-registry', 'skopeo']);
  swarm = await startOpsSwarm({ nodes: 2 });
});
test.after.always(async () => swarm?.close());

// Each k6 script runs once through the shim against a real local swarm
// (docker-registry, a supernode, two node agents): its requests, digest checks,
// metrics and thresholds are exercised for real; only the k6 runtime is a shim.
test.serial('pull-storm.js through the node proxies: every manifest and blob matches its digest, thresholds pass', async (t) => {
  const image = `${swarm.registry.host}/${swarm.repository}:${swarm.tag}`;
  const proxies = swarm.nodes.map((n) => n.proxyUrl).join(',');
  const run = await k6Shim('pull-storm.js', { SHOAL_IMAGE: image, SHOAL_PROXY_URLS: proxies, VUS: '4', ITERATIONS: '6' });
  t.is(run.code, 0, `${run.stdout}\n${run.stderr}`);
  allChecksPassed(t, run.summary);
  t.is(run.summary.interrupted, 0);
  const blobs = 1 + swarm.image.layers.length;
  t.is(run.summary.metrics.shoal_blob_duration?.count, 6 * blobs, 'every blob of every pull fetched');
  t.is(run.summary.metrics.shoal_digest_ok?.sum, run.summary.metrics.shoal_digest_ok?.count, 'every digest matched');
  t.is(run.summary.metrics.shoal_pull_duration?.count, 6, 'six whole pulls');
  t.is(run.summary.metrics.shoal_blob_from_swarm?.sum, 6 * blobs, 'every blob from the swarm, none from the registry');
});

test.serial('pull-storm.js straight to peer ports with the cluster token', async (t) => {
  const image = `${swarm.registry.host}/${swarm.repository}:${swarm.tag}`;
  const run = await k6Shim('pull-storm.js', {
    SHOAL_IMAGE: image,
    SHOAL_PROXY_URLS: swarm.nodes[0]?.proxyUrl ?? '',
    SHOAL_BLOB_VIA: 'peer',
    SHOAL_PEER_URLS: swarm.nodes.map((n) => n.peerUrl).join(','),
    SHOAL_TOKEN: swarm.token,
    VUS: '2',
    ITERATIONS: '2',
  });
  t.is(run.code, 0, `${run.stdout}\n${run.stderr}`);
  allChecksPassed(t, run.summary);
  t.true((run.summary.metrics.shoal_digest_ok?.count ?? 0) > 0);
  t.is(run.summary.metrics.shoal_digest_ok?.sum, run.summary.metrics.shoal_digest_ok?.count);
});

test.serial('a threshold that cannot hold fails the run with k6\'s exit code 99', async (t) => {
  const image = `${swarm.registry.host}/${swarm.repository}:${swarm.tag}`;
  const run = await k6Shim('pull-storm.js', { SHOAL_IMAGE: image, SHOAL_PROXY_URLS: swarm.nodes[0]?.proxyUrl ?? '', VUS: '1', ITERATIONS: '1', BLOB_P95_MS: '0' });
  t.is(run.code, 99, run.stdout);
  t.regex(run.stdout, /threshold ✗ shoal_blob_duration p\(95\)<0/);
});

test.serial('tag-resolution.js: concurrent HEADs through the proxies all name the tag\'s digest', async (t) => {
  const images = [`${swarm.registry.host}/${swarm.repository}:${swarm.tag}`, swarm.preheatImage].join(',');
  const run = await k6Shim('tag-resolution.js', { SHOAL_PROXY_URLS: swarm.nodes.map((n) => n.proxyUrl).join(','), SHOAL_IMAGES: images, VUS: '4', ITERATIONS: '40' });
  t.is(run.code, 0, `${run.stdout}\n${run.stderr}`);
  allChecksPassed(t, run.summary);
  t.is(run.summary.metrics.shoal_tag_digest_ok?.count, 40);
  t.is(run.summary.metrics.shoal_tag_digest_ok?.sum, 40);
});

test.serial('preheat.js: concurrent preheat jobs into every node, polled to done', async (t) => {
  const run = await k6Shim('preheat.js', {
    SHOAL_SUPERNODE_URL: swarm.supernode.url,
    SHOAL_TOKEN: swarm.token,
    SHOAL_IMAGES: [`${swarm.registry.host}/${swarm.repository}:${swarm.tag}`, swarm.preheatImage].join(','),
    SHOAL_NODES: 'all',
    POLL_INTERVAL_S: '0.2',
    VUS: '3',
    ITERATIONS: '3',
  });
  t.is(run.code, 0, `${run.stdout}\n${run.stderr}`);
  allChecksPassed(t, run.summary);
  t.is(run.summary.metrics.shoal_preheat_ok?.count, 3);
  t.is(run.summary.metrics.shoal_preheat_ok?.sum, 3, 'every job done');
});
