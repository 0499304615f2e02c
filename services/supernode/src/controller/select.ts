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
 * The nodes a job selects: its `names`, the Kubernetes nodes whose labels
 * match, or (podSelector) `podNodeNames`, the nodes of its matching pods.
 * `kubeNodes` is only read for a label selector. Split by whether a
 * peer registered with that node name (`--node-name`), since only those can
 * be filled through the swarm.
 */
export function selectNodes(selector: NodeSelector, kubeNodes: readonly KubeNode[], peerNodeNames: ReadonlySet<string>, podNodeNames: readonly string[] = []): NodeSelection {
  let names: string[];
  if (selector.kind === 'names') names = [...new Set(selector.names)];
  else if (selector.kind === 'pods') names = [...new Set(podNodeNames)];
  else names = [...new Set(kubeNodes.filter((n) => labelsMatch(n.labels, selector.matchLabels, selector.matchExpressions)).map((n) => n.name))];
  names.sort();
  const truncated = names.length > MAX_NODES_PER_JOB;
  if (truncated) names = names.slice(0, MAX_NODES_PER_JOB);
  return { withPeer: names.filter((n) => peerNodeNames.has(n)), withoutPeer: names.filter((n) => !peerNodeNames.has(n)), truncated };
}

/** A pod as podSelector reads it. */
export interface KubePod {
  nodeName: string | undefined;
  phase: string | undefined;
  deleting: boolean;
}

/** The nodes of active pods (scheduled, not finished, not being deleted), as OpenKruise's podSelector picks them. */
export function nodesOfActivePods(pods: readonly KubePod[]): string[] {
  const names = new Set<string>();
  for (const p of pods) if (p.nodeName !== undefined && p.nodeName !== '' && !p.deleting && p.phase !== 'Succeeded' && p.phase !== 'Failed') names.add(p.nodeName);
  return [...names];
}

/** A LabelSelector as the API's `labelSelector` query parameter (`a=b,c in (d,e),!f`). */
export function labelSelectorQuery(matchLabels: Readonly<Record<string, string>>, matchExpressions: readonly LabelSelectorRequirement[]): string {
  const parts = Object.entries(matchLabels).map(([k, v]) => `${k}=${v}`);
  for (const e of matchExpressions) {
    if (e.operator === 'In') parts.push(`${e.key} in (${e.values.join(',')})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${e.values.join(',')})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else parts.push(`!${e.key}`);
  }
  return parts.join(',');
}
