import type { RenderOptions } from './helm.js';

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
        metrics: { serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' } }, podMonitor: { enabled: true, interval: '15s', labels: { release: 'kube-prometheus-stack' } }, grafanaDashboard: { enabled: true }, prometheusRule: { enabled: true, labels: { release: 'kube-prometheus-stack' } } },
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

