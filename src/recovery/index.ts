// Recovery's entry point for main.ts: Kubernetes access (in-cluster or --kubeconfig) and the
// scheduler. Without any API configuration recovery still repairs from on-disk state.
// @kubernetes/client-node (about a second to load on a small node) is loaded only after the start-up
// repairs from local state are under way, and not at all without API configuration.
import type { Driver } from '../driver.js';
import { errorMessage } from '../errors.js';
import type { KubeReader } from '../kube/reader.js';
import type { MountEngine } from '../mount/index.js';
import { Recovery } from './scheduler.js';

export { Recovery, type ScanSummary, type Trigger } from './scheduler.js';

export function startRecovery(driver: Driver, mounter: MountEngine): Recovery {
  const cfg = driver.config;
  const inCluster = Boolean(process.env.KUBERNETES_SERVICE_HOST && process.env.KUBERNETES_SERVICE_PORT);
  const configured = cfg.kubeconfig !== undefined || inCluster;
  const loadReader = async (): Promise<KubeReader | undefined> => {
    try {
      const { createKubeReader } = await import('../kube/client.js');
      return createKubeReader({ kubeconfig: cfg.kubeconfig, timeoutMs: 10_000 });
    } catch (err) {
      driver.log.warn({ err: errorMessage(err), kubeconfig: cfg.kubeconfig }, 'no Kubernetes API access: recovery uses on-disk state only');
      return undefined;
    }
  };
  if (!configured) driver.log.warn({ err: 'not running in a cluster (KUBERNETES_SERVICE_HOST/PORT unset) and no --kubeconfig given' }, 'no Kubernetes API access: recovery uses on-disk state only');
  const recovery = new Recovery(driver, mounter, configured ? loadReader : undefined);
  recovery.start();
  driver.log.info({ node: cfg.nodeId, kubeconfig: cfg.kubeconfig ?? (inCluster ? 'in-cluster' : 'none'), interval_ms: cfg.recovery.intervalMs, parallelism: cfg.recovery.parallelism }, 'recovery started');
  return recovery;
}
