import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import yaml from 'js-yaml';
import { IMAGE_PULL_JOB_GROUP, IMAGE_PULL_JOB_PLURAL, IMAGE_PULL_JOB_VERSION } from '@shoal/supernode';
import { render, type K8sObject } from './helpers/helm.js';
import { SCENARIOS } from './helpers/helm-scenarios.js';

// Every flag and SHOAL_* variable the rendered chart (a real helm 4) gives a
// `shoal` subcommand must be one that subcommand's --help lists; so must the
// command lines NOTES.txt tells users to run. Also holds the chart to values.yaml
// and to the controller's CRD constants.

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const CHART = join(root, 'charts/shoal');
const SHOAL = join(root, 'services/shoal/bin/shoal.js');
const run = promisify(execFile);

/** The subcommands the chart's containers run; each must be found (the test cannot pass on no containers). */
const CHART_SUBCOMMANDS = ['containerd-config', 'node', 'supernode'];

interface ContainerUse {
  file: string;
  container: string;
  subcommand: string;
  flags: string[];
  env: string[];
}

const FLAG = /(?<![\w-])--([a-z][a-z0-9-]*)/g;
const flagsIn = (text: string): string[] => [...text.matchAll(FLAG)].map((m) => m[1] ?? '');

interface RenderedContainer {
  name: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string }>;
}

/**
 * The `shoal` containers of rendered objects: for each container whose command
 * is `shoal <subcommand>`, the flags in its command and args and the SHOAL_*
 * variables in its env. Containers running anything else (the uninstall hook's
 * idle and wait containers run `node`) are not `shoal` uses.
 */
export function containerUses(objects: readonly K8sObject[]): ContainerUse[] {
  const uses: ContainerUse[] = [];
  for (const o of objects) {
    const spec = ((o.spec as { template?: { spec?: unknown } } | undefined)?.template?.spec ?? {}) as { containers?: RenderedContainer[]; initContainers?: RenderedContainer[] };
    for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
      const words = [...(c.command ?? []), ...(c.args ?? [])];
      if (words[0] !== 'shoal') continue;
      const subcommand = words[1] ?? '';
      uses.push({
        file: `${o.kind}/${o.metadata.name}`,
        container: c.name,
        subcommand,
        flags: [...new Set(flagsIn(words.slice(2).join('\n')))],
        env: (c.env ?? []).map((e) => e.name).filter((n) => n.startsWith('SHOAL_')),
      });
    }
  }
  return uses;
}

/** `shoal <cmd> ...` command lines in prose (NOTES.txt): the subcommand and the flags on that line. */
export function commandLines(text: string): Array<{ subcommand: string; flags: string[] }> {
  return [...text.matchAll(/\bshoal ([a-z][a-z-]*)([^\n]*)/g)].map((m) => ({ subcommand: m[1] ?? '', flags: flagsIn(m[2] ?? '') }));
}

/** Every `.Values.a.b.c` a template reads, as ['a', 'b', 'c']. */
export function valuesPaths(text: string): string[][] {
  return [...text.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)].map((m) => (m[1] ?? '').slice(1).split('.'));
}

export function hasPath(values: unknown, path: string[]): boolean {
  let at: unknown = values;
  for (const key of path) {
    if (typeof at !== 'object' || at === null || !Object.prototype.hasOwnProperty.call(at, key)) return false;
    at = (at as Record<string, unknown>)[key];
  }
  return true;
}

interface Help {
  flags: Set<string>;
  env: Set<string>;
}

const helpCache = new Map<string, Promise<Help>>();

/** The real executable's `shoal <cmd> --help`: its flags and their SHOAL_* variables. */
function help(subcommand: string): Promise<Help> {
  let cached = helpCache.get(subcommand);
  if (cached === undefined) {
    cached = run(process.execPath, [SHOAL, subcommand, '--help'], { env: { PATH: process.env.PATH ?? '' } }).then(({ stdout }) => {
      const flags = new Set([...stdout.matchAll(/^ {2}--([a-z0-9-]+)\s/gm)].map((m) => m[1] ?? ''));
      const env = new Set([...stdout.matchAll(/\[(SHOAL_[A-Z0-9_]+)\]$/gm)].map((m) => m[1] ?? ''));
      if (flags.size === 0 || flags.size !== env.size) throw new Error(`shoal ${subcommand} --help: could not read its flags:\n${stdout}`);
      return { flags, env };
    });
    helpCache.set(subcommand, cached);
  }
  return cached;
}

/** Problems with one container's (or command line's) flags and variables against the real CLI. */
export async function cliProblems(where: string, subcommand: string, flags: string[], env: string[]): Promise<string[]> {
  const h = await help(subcommand);
  const problems: string[] = [];
  for (const flag of flags) if (!h.flags.has(flag)) problems.push(`${where}: shoal ${subcommand} has no --${flag}`);
  for (const name of env) {
    const flag = name.slice('SHOAL_'.length).toLowerCase().replace(/_/g, '-');
    if (!h.flags.has(flag) || !h.env.has(name)) problems.push(`${where}: ${name} is no flag of shoal ${subcommand} (no --${flag})`);
  }
  return problems;
}

async function templates(): Promise<Array<{ file: string; text: string }>> {
  const dir = join(CHART, 'templates');
  const files = (await readdir(dir)).sort();
  return Promise.all(files.map(async (file) => ({ file, text: await readFile(join(dir, file), 'utf8') })));
}

test('every flag and SHOAL_* variable the rendered chart gives shoal is one the real CLI has', async (t) => {
  const uses: ContainerUse[] = [];
  for (const options of Object.values(SCENARIOS)) uses.push(...containerUses(await render(options)));
  const seen = new Set<string>();
  for (const use of uses) {
    const line = `${use.file} ${use.container}: shoal ${use.subcommand} ${use.flags.map((f) => `--${f}`).join(' ')} ${use.env.join(' ')}`;
    if (!seen.has(line)) t.log(line);
    seen.add(line);
  }
  t.deepEqual([...new Set(uses.map((u) => u.subcommand))].sort(), CHART_SUBCOMMANDS);
  const problems: string[] = [];
  for (const use of uses) {
    t.true(use.flags.length > 0, `${use.file}: container ${use.container} passes no flags`);
    problems.push(...(await cliProblems(`${use.file} (${use.container})`, use.subcommand, use.flags, use.env)));
  }
  t.deepEqual([...new Set(problems)], []);
  // What the README promises: every service gets the token file.
  for (const use of uses.filter((u) => u.subcommand !== 'containerd-config')) t.true(use.flags.includes('token-file'), `${use.container} has no --token-file`);
});

test('the shoal commands NOTES.txt tells users to run exist, with those flags', async (t) => {
  const notes = await readFile(join(CHART, 'templates/NOTES.txt'), 'utf8');
  const lines = commandLines(notes);
  t.true(lines.some((l) => l.subcommand === 'doctor'), 'NOTES.txt shows no `shoal doctor`');
  const problems: string[] = [];
  for (const line of lines) problems.push(...(await cliProblems('NOTES.txt', line.subcommand, line.flags, [])));
  t.deepEqual(problems, []);
});

test('the checks catch a typo (a flag, a variable, a command line)', async (t) => {
  const broken = {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'broken' },
    spec: { template: { spec: { containers: [{ name: 'node', command: ['shoal', 'node'], args: ['--supernode=http://sn:8002', '--peer-listn=0.0.0.0:65002'], env: [{ name: 'SHOAL_NODE_NAM' }] }] } } },
  } satisfies K8sObject;
  const [use] = containerUses([broken]);
  t.deepEqual(use?.flags, ['supernode', 'peer-listn']);
  t.deepEqual(await cliProblems('broken.yaml', 'node', use?.flags ?? [], use?.env ?? []), [
    'broken.yaml: shoal node has no --peer-listn',
    'broken.yaml: SHOAL_NODE_NAM is no flag of shoal node (no --node-nam)',
  ]);
  // A variable of another subcommand is refused too.
  t.is((await cliProblems('x', 'containerd-config', [], ['SHOAL_TOKEN_FILE'])).length, 1);
  const [line] = commandLines('kubectl exec pod -- shoal doctor --cert-dir /x');
  t.deepEqual(await cliProblems('NOTES', line?.subcommand ?? '', line?.flags ?? [], []), ['NOTES: shoal doctor has no --cert-dir']);
});

test('every .Values path the templates read is in values.yaml', async (t) => {
  const values = yaml.load(await readFile(join(CHART, 'values.yaml'), 'utf8'));
  const missing: string[] = [];
  let count = 0;
  for (const { file, text } of await templates()) {
    for (const path of valuesPaths(text)) {
      count++;
      if (!hasPath(values, path)) missing.push(`${file}: .Values.${path.join('.')}`);
    }
  }
  t.true(count > 20, `only ${count} .Values references found`);
  t.deepEqual(missing, []);
  // The checker itself: a misspelt path is missing.
  t.false(hasPath(values, valuesPaths('{{ .Values.node.dataHostPat }}')[0] ?? []));
  t.true(hasPath(values, ['node', 'dataHostPath']));
});

test('Chart.yaml and values.yaml parse; the chart is shoal 0.1.0', async (t) => {
  const chart = yaml.load(await readFile(join(CHART, 'Chart.yaml'), 'utf8')) as Record<string, unknown>;
  t.like(chart, { apiVersion: 'v2', name: 'shoal', version: '0.1.0', appVersion: '0.1.0' });
});

test('the CRD is the one the controller watches, and the RBAC names it', async (t) => {
  const crd = yaml.load(await readFile(join(CHART, 'crds/imagepulljobs.shoal.io.yaml'), 'utf8')) as {
    apiVersion: string;
    kind: string;
    metadata: { name: string };
    spec: { group: string; scope: string; names: { kind: string; plural: string }; versions: Array<{ name: string; served: boolean; storage: boolean; subresources?: { status?: unknown } }> };
  };
  t.is(crd.apiVersion, 'apiextensions.k8s.io/v1');
  t.is(crd.kind, 'CustomResourceDefinition');
  t.is(crd.metadata.name, `${IMAGE_PULL_JOB_PLURAL}.${IMAGE_PULL_JOB_GROUP}`);
  t.is(crd.spec.group, IMAGE_PULL_JOB_GROUP);
  t.is(crd.spec.scope, 'Namespaced');
  t.is(crd.spec.names.plural, IMAGE_PULL_JOB_PLURAL);
  t.is(crd.spec.names.kind, 'ImagePullJob');
  const version = crd.spec.versions.find((v) => v.name === IMAGE_PULL_JOB_VERSION);
  t.truthy(version, `no version ${IMAGE_PULL_JOB_VERSION}`);
  t.true(version?.served === true && version.storage === true);
  t.truthy(version?.subresources?.status, 'the controller patches the status subresource');

  const rules = (await render()).filter((o) => o.kind === 'ClusterRole').flatMap((o) => o.rules as Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }>);
  const verbs = (resource: string): string[] => rules.filter((r) => r.apiGroups.includes(IMAGE_PULL_JOB_GROUP) && r.resources.includes(resource)).flatMap((r) => r.verbs);
  t.deepEqual(verbs(IMAGE_PULL_JOB_PLURAL), ['get', 'list', 'watch', 'delete']);
  t.deepEqual(verbs(`${IMAGE_PULL_JOB_PLURAL}/status`), ['patch', 'update']);
});
