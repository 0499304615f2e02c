import test from 'ava';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { requireTools } from '@shoal/testkit';
import { sampleNames, scrapeFamilies, startOpsSwarm, type MetricFamily } from './helpers/ops-swarm.js';
import { dashboardExpressions, metricNamesIn, ruleExpressions } from './helpers/promql.js';

const ROOT = new URL('../../../', import.meta.url);
const OPERATIONS = fileURLToPath(new URL('docs/operations.md', ROOT));
const DASHBOARD = fileURLToPath(new URL('charts/shoal/dashboards/shoal.json', ROOT));
const RULES = fileURLToPath(new URL('charts/shoal/templates/prometheusrule.yaml', ROOT));

let families: MetricFamily[] = [];
test.before(async () => {
  await requireTools(['docker-registry', 'skopeo']);
  const swarm = await startOpsSwarm({ nodes: 1 });
  try {
    // One family per name: a node agent's peer and proxy share a registry.
    const byName = new Map<string, MetricFamily>();
    for (const f of await scrapeFamilies(swarm)) if (!byName.has(f.name)) byName.set(f.name, f);
    families = [...byName.values()];
  } finally {
    await swarm.close();
  }
});

/** Rows of the metrics reference: `| \`name\` | type | labels | meaning |`; a name ending in `*` covers a prefix. */
function documentedMetrics(markdown: string): Array<{ name: string; type: string }> {
  const section = markdown.split(/^## /m).find((s) => s.startsWith('Metrics reference')) ?? '';
  return [...section.matchAll(/^\| `(shoal_[a-z0-9_*]+)` \| (\w+) \|/gm)].map((m) => ({ name: m[1] as string, type: m[2] as string }));
}

// docs/operations.md lists every metric the services export, with its type, and
// nothing they do not: the list is held to a real scrape of a supernode and a
// node agent (peer and proxy) that have served a pull and a preheat.
test('docs/operations.md lists exactly the metrics the services export, with their types', async (t) => {
  const documented = documentedMetrics(await readFile(OPERATIONS, 'utf8'));
  t.true(documented.length > 30, `only ${documented.length} metrics documented`);
  const exact = new Map(documented.filter((d) => !d.name.endsWith('*')).map((d) => [d.name, d.type]));
  const prefixes = documented.filter((d) => d.name.endsWith('*')).map((d) => d.name.slice(0, -1));
  const exported = families.filter((f) => f.name.startsWith('shoal_'));
  const undocumented = exported.filter((f) => !exact.has(f.name) && !prefixes.some((p) => f.name.startsWith(p))).map((f) => f.name);
  t.deepEqual(undocumented, [], 'every exported metric is documented');
  const names = new Set(exported.map((f) => f.name));
  t.deepEqual([...exact.keys()].filter((n) => !names.has(n)), [], 'every documented metric is exported');
  for (const p of prefixes) t.true(exported.some((f) => f.name.startsWith(p)), `${p}* matches an exported metric`);
  const wrongType = exported.filter((f) => exact.has(f.name) && exact.get(f.name) !== f.type).map((f) => `${f.name}: documented ${exact.get(f.name)}, exported ${f.type}`);
  t.deepEqual(wrongType, []);
  t.deepEqual(families.filter((f) => !f.name.startsWith('shoal_')).map((f) => f.name), [], 'every metric carries the shoal_ prefix');
});

// Every PromQL expression in the Grafana dashboard and in the PrometheusRule
// names only metrics (or a histogram's _bucket/_sum/_count) that the services
// really export, checked offline against the same real scrape.
test('the dashboard and the alert rules name only exported metrics', async (t) => {
  const samples = new Set(families.flatMap(sampleNames));
  const dashboard = dashboardExpressions(JSON.parse(await readFile(DASHBOARD, 'utf8')));
  const rules = ruleExpressions(await readFile(RULES, 'utf8'));
  t.true(dashboard.length >= 25, `${dashboard.length} dashboard expressions`);
  t.deepEqual(rules.map((r) => r.alert).sort(), ['ShoalCacheNearQuota', 'ShoalHighFallbackRatio', 'ShoalNoSupernodeReachable', 'ShoalSupernodeDown', 'ShoalTokenMismatch']);
  const unknown: string[] = [];
  let named = 0;
  for (const { where, expr } of [...dashboard.map((d) => ({ where: `dashboard "${d.panel}"`, expr: d.expr })), ...rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }))]) {
    const names = metricNamesIn(expr);
    if (names.length === 0) unknown.push(`${where}: no metric in ${expr}`);
    named += names.length;
    for (const n of names) if (!samples.has(n)) unknown.push(`${where}: ${n}`);
  }
  t.deepEqual(unknown, []);
  t.true(named > 40);
});

test('metricNamesIn finds selectors, not functions, labels, windows or grouping lists', (t) => {
  t.deepEqual(metricNamesIn('histogram_quantile(0.95, sum by (le, source) (rate(shoal_proxy_blob_duration_seconds_bucket{source="up stream"}[$__rate_interval])))'), ['shoal_proxy_blob_duration_seconds_bucket']);
  t.deepEqual(metricNamesIn('(count(a_b) or vector(0)) < {{ .Values.supernode.replicas }} or min(c) < max(d_total offset 5m)').sort(), ['a_b', 'c', 'd_total']);
  t.deepEqual(metricNamesIn('x / on(instance) group_left(zone) y > bool 1e3'), ['x', 'y']);
});
