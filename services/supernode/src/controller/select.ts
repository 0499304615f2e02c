import { MAX_NODES_PER_JOB, type LabelSelectorRequirement, type NodeSelector } from './spec.js';

export interface KubeNode {
  name: string;
  labels: Readonly<Record<string, string>>;
}

/** Whether a node's labels satisfy matchLabels and every matchExpression (Kubernetes' LabelSelector semantics). */
export function labelsMatch(labels: Readonly<Record<string, string>>, matchLabels: Readonly<Record<string, string>>, matchExpressions: readonly LabelSelectorRequirement[]): boolean {
  for (const [key, value] of Object.entries(matchLabels)) if (labels[key] !== value) return false;
  for (const e of matchExpressions) {
    const has = Object.hasOwn(labels, e.key);
    const value = labels[e.key];
    switch (e.operator) {
      case 'In':
        if (!has || !e.values.includes(value as string)) return false;
        break;
      case 'NotIn':
        if (has && e.values.includes(value as string)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

export interface NodeSelection {
  /** Selected nodes with a live Shoal peer here: these can be filled. Sorted. */
  withPeer: string[];
  /** Selected nodes without one: nothing here can fill them. Sorted. */
  withoutPeer: string[];
  /** More nodes matched than MAX_NODES_PER_JOB; the rest were left out. */
  truncated: boolean;
}

/**
 * The nodes a job selects: its `names`, or the Kubernetes nodes whose labels
 * match. `kubeNodes` is only read for a label selector. Split by whether a
 * peer registered with that node name (`--node-name`), since only those can
 * be filled through the swarm.
 */
export function selectNodes(selector: NodeSelector, kubeNodes: readonly KubeNode[], peerNodeNames: ReadonlySet<string>): NodeSelection {
  let names: string[];
  if (selector.kind === 'names') names = [...new Set(selector.names)];
  else names = [...new Set(kubeNodes.filter((n) => labelsMatch(n.labels, selector.matchLabels, selector.matchExpressions)).map((n) => n.name))];
  names.sort();
  const truncated = names.length > MAX_NODES_PER_JOB;
  if (truncated) names = names.slice(0, MAX_NODES_PER_JOB);
  return { withPeer: names.filter((n) => peerNodeNames.has(n)), withoutPeer: names.filter((n) => !peerNodeNames.has(n)), truncated };
}
