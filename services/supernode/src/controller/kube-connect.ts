import type { KubeAccess } from './kube.js';

/**
 * A KubeAccess from a kubeconfig file, or (without one) the pod's service
 * account, as in-cluster clients do. Throws when neither is usable.
 * @kubernetes/client-node is loaded only here: importing it costs ~0.5 s and
 * ~85 MiB of RSS, which no node agent and no supernode without
 * --image-pull-jobs should pay. (kube.ts holds the types and the JSON
 * readers, kube-client.ts the client; this file is the one door to the
 * latter, so neither imports the other back.)
 */
export async function kubeClientFrom(options: { kubeconfig?: string | undefined; namespace?: string | undefined }): Promise<KubeAccess> {
  const { connectKube } = await import('./kube-client.js');
  return connectKube(options);
}
