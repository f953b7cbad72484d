// Paths of the real components installed by scripts/install-tools.sh (cached by version under toolsDir).
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const toolsDir = process.env.S3FS_CSI_TOOLS_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 's3fs-csi', 'tools');

function tool(envName: string, relative: string): string {
  const path = process.env[envName] ?? join(toolsDir, relative);
  return path;
}

export const tools = {
  versitygw: tool('VERSITYGW_BIN', 'versitygw-v1.7.0/versitygw'),
  csiSanity: tool('CSI_SANITY_BIN', 'csi-sanity-v5.6.0/csi-sanity'),
  helm: tool('HELM_BIN', 'helm-v3.21.4/helm'),
  kubeApiserver: tool('KUBE_APISERVER_BIN', 'kube-apiserver-v1.34.4/kube-apiserver'),
  etcd: tool('ETCD_BIN', 'etcd-v3.6.14/etcd'),
  dockerfileLint: tool('DOCKERFILE_LINT_BIN', 'dockerfile-lint-v0.34.2/dockerfile-lint'),
  kubelet: tool('KUBELET_BIN', 'kubelet-v1.34.4/kubelet'),
  kubeControllerManager: tool('KUBE_CONTROLLER_MANAGER_BIN', 'kube-controller-manager-v1.34.4/kube-controller-manager'),
  kubeScheduler: tool('KUBE_SCHEDULER_BIN', 'kube-scheduler-v1.34.4/kube-scheduler'),
  kubectl: tool('KUBECTL_BIN', 'kubectl-v1.34.4/kubectl'),
  /** The sidecars' own deploy/kubernetes/rbac.yaml files (scripts/install-tools.sh chart). */
  sidecarRbacDir: tool('SIDECAR_RBAC_DIR', 'sidecar-rbac'),
  /** promtool (scripts/install-tools.sh promtool): checks and unit-tests the chart's alerts. */
  promtool: tool('PROMTOOL_BIN', 'promtool-v0.316.0/promtool'),
};

export function requireTool(path: string): string {
  if (!existsSync(path)) throw new Error(`${path} is missing: run scripts/install-tools.sh (make test does)`);
  return path;
}
