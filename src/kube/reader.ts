// What recovery needs to know of Kubernetes access without loading @kubernetes/client-node (about a
// second of start-up on a small node): the reader's interface and its error. client.ts implements it;
// recovery loads that only once its local repairs are under way.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1Pod, V1StorageClass } from '@kubernetes/client-node';

export type KubeErrorKind = 'unreachable' | 'forbidden' | 'unauthorized' | 'timeout' | 'other';

export class KubeError extends Error {
  constructor(
    readonly kind: KubeErrorKind,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'KubeError';
  }
}

export interface KubeReader {
  /** Pods scheduled to `node` (field selector spec.nodeName), all namespaces, every page. */
  listPodsOnNode(node: string): Promise<V1Pod[]>;
  /** undefined when the object does not exist. */
  getPvc(namespace: string, name: string): Promise<V1PersistentVolumeClaim | undefined>;
  getPv(name: string): Promise<V1PersistentVolume | undefined>;
  getStorageClass(name: string): Promise<V1StorageClass | undefined>;
  /** The Secret's data, decoded; undefined when it does not exist. */
  getSecretData(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  /** Calls made so far (for metrics and the "no API call" tests). */
  readonly calls: number;
}

export interface KubeAccessOptions {
  /** kubeconfig file; undefined = in-cluster config (ServiceAccount token + KUBERNETES_SERVICE_HOST). */
  kubeconfig?: string;
  /** Deadline of one API call. */
  timeoutMs?: number;
}
