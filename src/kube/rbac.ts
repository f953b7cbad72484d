// The node plugin's Kubernetes permissions, in one place: the reads recovery makes, and the two
// writes of its Event recorder, nothing more. The Helm chart's node ClusterRole must equal this list
// (its tests compare them), and the recovery integration test runs with a ServiceAccount bound to
// exactly these rules.

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

export const NODE_READ_RULES: readonly PolicyRule[] = [
  // Pods of this node only: listed with the field selector spec.nodeName=<node>. `watch` is granted for
  // the same query (the API's list+watch pair); a field selector cannot be enforced by RBAC itself.
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
  // Read one object by name at a time: the claims, volumes and classes of those pods.
  { apiGroups: [''], resources: ['persistentvolumeclaims', 'persistentvolumes'], verbs: ['get'] },
  { apiGroups: ['storage.k8s.io'], resources: ['storageclasses'], verbs: ['get'] },
  // The node-stage/-publish Secret a volume names, by name. Never list: that would expose every Secret.
  { apiGroups: [''], resources: ['secrets'], verbs: ['get'] },
];

/**
 * Events on the Pods and PVCs recovery repairs (--events, src/kube/events.ts): create a new one, patch
 * the count of a repeated one. Never get/list/watch/update/delete: the recorder keeps what it wrote
 * in memory. The chart leaves this rule out with node.recovery.events=false.
 */
export const NODE_EVENT_RULES: readonly PolicyRule[] = [
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
];

export const NODE_RBAC_RULES: readonly PolicyRule[] = [...NODE_READ_RULES, ...NODE_EVENT_RULES];

/** The rule a request needs, as one line for error messages ("get secrets", "list pods"). */
export function ruleText(verb: string, resource: string, apiGroup = ''): string {
  return `{apiGroups: ["${apiGroup}"], resources: ["${resource}"], verbs: ["${verb}"]}`;
}
