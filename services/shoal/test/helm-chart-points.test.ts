import test from 'ava';
import { find, render, type K8sObject } from './helpers/helm.js';

// Each point of the chart review that would hurt a 300-node cluster, held by the
// rendered chart (a real helm 4). Each test fails on the chart as it was.

interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string }>;
  securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean; capabilities?: { drop?: string[] }; seccompProfile?: { type: string } };
  volumeMounts?: Array<{ name: string; mountPath: string; subPath?: string }>;
  startupProbe?: unknown;
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Array<{ name: string; secret?: { secretName: string; items?: Array<{ key: string; path: string }> }; hostPath?: { path: string; type?: string } }>;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type: string } };
  nodeSelector?: Record<string, string>;
  priorityClassName?: string;
  affinity?: { podAntiAffinity?: Record<string, unknown> };
}
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

const podSpec = (o: K8sObject): PodSpec => ((o.spec as { template?: { spec: PodSpec } }).template?.spec ?? (o.spec as PodSpec));
const workloads = (objects: readonly K8sObject[]): K8sObject[] => objects.filter((o) => ['DaemonSet', 'StatefulSet', 'Job', 'Deployment', 'Pod'].includes(o.kind));
const allContainers = (spec: PodSpec): Container[] => [...(spec.initContainers ?? []), ...spec.containers];
const args = (c: Container | undefined): string[] => [...(c?.command ?? []), ...(c?.args ?? [])];

test("hosts.toml: the node's own file is merged, not overwritten, and a post-delete hook restores it", async (t) => {
  const objects = await render();
  const node = podSpec(find(objects, 'DaemonSet', '-node'));
  const init = node.initContainers?.find((c) => c.name === 'containerd-config');
  t.deepEqual(init?.command, ['shoal', 'containerd-config']);
  const hook = find(objects, 'DaemonSet', '-restore');
  t.is(hook.metadata.annotations?.['helm.sh/hook'], 'post-delete');
  const restore = podSpec(hook).initContainers?.[0];
  t.true(args(restore).includes('--restore'));
  t.true(args(restore).some((a) => a === '--certs-dir=/host/etc/containerd/certs.d'));
  const wait = find(objects, 'Job', '-restore-wait');
  t.is(wait.metadata.annotations?.['helm.sh/hook'], 'post-delete');
  t.true(Number(wait.metadata.annotations?.['helm.sh/hook-weight']) > Number(hook.metadata.annotations?.['helm.sh/hook-weight']), 'the wait runs after the restore DaemonSet exists');
  t.false((await render({ set: { 'containerd.restoreOnUninstall': false } })).some((o) => o.metadata.name.endsWith('-restore')));
});

test('quota: nodes and supernodes have one by default, with watermarks; sizes like 40G are understood and bad ones refused', async (t) => {
  const objects = await render();
  const nodeArgs = args(podSpec(find(objects, 'DaemonSet', '-node')).containers[0]);
  t.true(nodeArgs.includes(`--cache-quota-bytes=${20 * 2 ** 30}`), nodeArgs.join(' '));
  t.true(nodeArgs.includes('--cache-high-watermark-percent=90'));
  t.true(nodeArgs.includes('--cache-low-watermark-percent=75'));
  t.true(args(podSpec(find(objects, 'StatefulSet')).containers[0]).includes(`--cache-quota-bytes=${40 * 2 ** 30}`));
  // The issue's own example: rendered as 0, the agent crash-looped on "must be ≥ 1".
  const fortyG = await render({ setString: { 'supernode.cacheQuota': '40G', 'node.cacheQuota': '40000000000' } });
  t.true(args(podSpec(find(fortyG, 'StatefulSet')).containers[0]).includes('--cache-quota-bytes=40000000000'));
  t.true(args(podSpec(find(fortyG, 'DaemonSet', '-node')).containers[0]).includes('--cache-quota-bytes=40000000000'));
  const none = await render({ setString: { 'node.cacheQuota': '0' } });
  t.false(args(podSpec(find(none, 'DaemonSet', '-node')).containers[0]).some((a) => a.startsWith('--cache-quota-bytes')));
  await t.throwsAsync(render({ setString: { 'node.cacheQuota': '40GB' } }), { message: /schema/ });
  await t.throwsAsync(render({ set: { 'node.cacheQuta': '40G' } }), { message: /schema|additional/i }, 'a misspelt key is refused');
  await t.throwsAsync(render({ set: { 'node.cacheLowWatermarkPercent': 95 } }), { message: /must be below/ });
});

test('metrics: the node agent is scraped on its peer port (PodMonitor), the supernodes through a ServiceMonitor', async (t) => {
  const objects = await render({ set: { 'metrics.podMonitor.enabled': true, 'metrics.serviceMonitor.enabled': true } });
  const podMonitor = find(objects, 'PodMonitor') as K8sObject & { spec: { podMetricsEndpoints: Array<{ port: string; path: string }> } };
  t.is(podMonitor.spec.podMetricsEndpoints[0]?.port, 'peer');
  const node = find(objects, 'DaemonSet', '-node') as K8sObject & { spec: { template: { metadata: { annotations: Record<string, string> } } } };
  t.is(node.spec.template.metadata.annotations['prometheus.io/port'], '65002');
  t.truthy(find(objects, 'ServiceMonitor'));
});

test('RBAC: with a namespace, secrets and jobs are granted in a Role there; the ClusterRole holds only nodes', async (t) => {
  const objects = await render({ set: { 'controller.namespace': 'apps' } });
  const clusterRules = objects.filter((o) => o.kind === 'ClusterRole').flatMap((o) => o.rules as Rule[]);
  t.deepEqual(clusterRules, [{ apiGroups: [''], resources: ['nodes'], verbs: ['list', 'watch'] }]);
  const jobs = objects.find((o) => o.kind === 'Role' && o.metadata.namespace === 'apps');
  const rules = (jobs?.rules ?? []) as Rule[];
  const grants = (group: string, resource: string): string[] => rules.filter((r) => r.apiGroups.includes(group) && r.resources.includes(resource)).flatMap((r) => r.verbs);
  t.deepEqual(grants('', 'secrets'), ['get']);
  t.deepEqual(grants('shoal.io', 'imagepulljobs'), ['get', 'list', 'watch', 'delete']);
  t.deepEqual(grants('shoal.io', 'imagelistpulljobs'), ['get', 'list', 'watch', 'delete']);
  t.deepEqual(grants('shoal.io', 'imagepulljobs/status'), ['patch', 'update']);
  t.deepEqual(grants('shoal.io', 'imagelistpulljobs/status'), ['patch', 'update']);
  t.deepEqual(grants('', 'pods'), ['list', 'watch']);
  t.deepEqual(grants('', 'events'), ['create', 'patch']);
  t.deepEqual(grants('events.k8s.io', 'events'), ['create', 'patch']);
  const leases = objects.find((o) => o.kind === 'Role' && (o.rules as Rule[]).some((r) => r.resources.includes('leases')));
  t.is(leases?.metadata.namespace, 'shoal');
  t.deepEqual((leases?.rules as Rule[])[0]?.verbs, ['get', 'create', 'update']);
  // Without a namespace the jobs' rules are cluster-wide, secrets included (pull secrets of any namespace).
  const all = await render();
  t.true(all.filter((o) => o.kind === 'ClusterRole').some((o) => (o.rules as Rule[]).some((r) => r.resources.includes('secrets'))));
});

test('pods: read-only root, no capabilities, seccomp RuntimeDefault, non-root supernode, Linux nodes only', async (t) => {
  const objects = await render();
  for (const w of workloads(objects)) {
    const spec = podSpec(w);
    t.is(spec.nodeSelector?.['kubernetes.io/os'], 'linux', `${w.kind}/${w.metadata.name} nodeSelector`);
    for (const c of allContainers(spec)) {
      const where = `${w.kind}/${w.metadata.name} ${c.name}`;
      t.is(c.securityContext?.readOnlyRootFilesystem, true, where);
      t.is(c.securityContext?.allowPrivilegeEscalation, false, where);
      t.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], where);
      t.is(c.securityContext?.seccompProfile?.type ?? spec.securityContext?.seccompProfile?.type, 'RuntimeDefault', where);
    }
  }
  const supernode = podSpec(find(objects, 'StatefulSet'));
  t.is(supernode.securityContext?.runAsNonRoot, true);
  t.true((supernode.securityContext?.runAsUser ?? 0) > 0);
});

test('node agent: system-node-critical, a percentage maxUnavailable, startupProbes, the containerd socket', async (t) => {
  const objects = await render();
  const ds = find(objects, 'DaemonSet', '-node') as K8sObject & { spec: { updateStrategy: { rollingUpdate?: { maxUnavailable?: string } } } };
  const spec = podSpec(ds);
  t.is(spec.priorityClassName, 'system-node-critical');
  t.regex(String(ds.spec.updateStrategy.rollingUpdate?.maxUnavailable), /^\d+%$/);
  t.truthy(spec.containers[0]?.startupProbe);
  t.truthy(podSpec(find(objects, 'StatefulSet')).containers[0]?.startupProbe);
  const socket = spec.volumes?.find((v) => v.hostPath?.path === '/run/containerd/containerd.sock');
  t.is(socket?.hostPath?.type, 'Socket');
  t.true(spec.containers[0]?.volumeMounts?.some((m) => m.name === socket?.name && m.mountPath === '/run/containerd/containerd.sock'));
  t.true(args(spec.containers[0]).includes('--containerd-socket=/run/containerd/containerd.sock'));
  const moved = podSpec(find(await render({ set: { 'containerd.socket': '/run/k3s/containerd/containerd.sock' } }), 'DaemonSet', '-node'));
  t.true(args(moved.containers[0]).includes('--containerd-socket=/run/k3s/containerd/containerd.sock'));
});

test('supernodes: a PodDisruptionBudget and anti-affinity; every replica runs the controller (Lease election), no shell wrapper', async (t) => {
  const objects = await render({ set: { 'supernode.replicas': 3 } });
  const pdb = find(objects, 'PodDisruptionBudget') as K8sObject & { spec: { maxUnavailable: number } };
  t.is(pdb.spec.maxUnavailable, 1);
  const spec = podSpec(find(objects, 'StatefulSet'));
  t.truthy(spec.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution);
  const hard = podSpec(find(await render({ set: { 'supernode.podAntiAffinity.type': 'hard' } }), 'StatefulSet'));
  t.truthy(hard.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution);
  const container = spec.containers[0];
  t.deepEqual(container?.command, ['shoal', 'supernode']);
  t.true(args(container).includes('--image-pull-jobs'));
  t.false(args(await render({ set: { 'controller.enabled': false } }).then((o) => podSpec(find(o, 'StatefulSet')).containers[0])).includes('--image-pull-jobs'));
});

test('NetworkPolicy: off by default; on, it admits the supernode port from the nodes; on without node CIDRs it refuses to render', async (t) => {
  t.false((await render()).some((o) => o.kind === 'NetworkPolicy'));
  const policy = find(await render({ set: { 'networkPolicy.enabled': true, 'networkPolicy.nodeCIDRs[0]': '10.0.0.0/16' } }), 'NetworkPolicy') as K8sObject & {
    spec: { ingress: Array<{ ports: Array<{ port: string }>; from: Array<{ ipBlock?: { cidr: string } }> }> };
  };
  t.is(policy.spec.ingress[0]?.ports[0]?.port, 'http');
  t.true(policy.spec.ingress[0]?.from.some((f) => f.ipBlock?.cidr === '10.0.0.0/16'));
  await t.throwsAsync(render({ set: { 'networkPolicy.enabled': true } }), { message: /nodeCIDRs/ });
});

test('names: a long release name gives names within 63 characters, StatefulSet revision hashes included', async (t) => {
  for (const release of ['shoal-image-distribution-production-eu-west-1ab', 'a'.repeat(53)]) {
    const objects = await render({ release });
    for (const o of objects) {
      t.true(o.metadata.name.length <= 63, `${o.kind}/${o.metadata.name} (${o.metadata.name.length})`);
      for (const [k, v] of Object.entries(o.metadata.labels ?? {})) t.true(v.length <= 63, `${o.kind} label ${k}=${v}`);
    }
    // controller-revision-hash: "<name>-<10 characters>"; pods "<name>-<ordinal>".
    t.true(find(objects, 'StatefulSet').metadata.name.length + 11 <= 63);
    t.true(find(objects, 'DaemonSet', '-node').metadata.name.length + 11 <= 63);
  }
});

test('token.existingSecret: no Secret rendered; every pod mounts that Secret as a whole volume (no subPath), so rotation reaches running pods', async (t) => {
  const objects = await render({ set: { 'token.existingSecret': 'cluster-token', 'token.existingSecretKey': 'value' } });
  t.false(objects.some((o) => o.kind === 'Secret'));
  let mounts = 0;
  for (const w of workloads(objects)) {
    const spec = podSpec(w);
    const token = spec.volumes?.find((v) => v.name === 'token');
    if (token === undefined) continue;
    t.is(token.secret?.secretName, 'cluster-token');
    t.deepEqual(token.secret?.items, [{ key: 'value', path: 'token' }]);
    for (const c of allContainers(spec)) {
      for (const m of c.volumeMounts ?? []) {
        if (m.name !== 'token') continue;
        mounts++;
        t.is(m.subPath, undefined, `${w.metadata.name} ${c.name} mounts the token with subPath: a rotation would never reach it`);
        t.true(args(c).includes('--token-file=/etc/shoal/token/token'));
      }
    }
  }
  t.is(mounts, 2, 'supernode and node agent mount the token');
});

test('token.graceSeconds reaches every pod that reads the token file as --token-grace-sec; the schema refuses a grace of zero', async (t) => {
  const graces = (objects: readonly K8sObject[]): string[] =>
    workloads(objects).flatMap((w) => allContainers(podSpec(w)).filter((c) => args(c).includes('--token-file=/etc/shoal/token/token')).map((c) => args(c).find((a) => a.startsWith('--token-grace-sec=')) ?? 'none'));
  t.deepEqual(graces(await render()), ['--token-grace-sec=300', '--token-grace-sec=300']);
  t.deepEqual(graces(await render({ set: { 'token.graceSeconds': '90' } })), ['--token-grace-sec=90', '--token-grace-sec=90']);
  await t.throwsAsync(render({ set: { 'token.graceSeconds': '0' } }), { message: /graceSeconds/ });
});
