// Recovery's entry point for main.ts: Kubernetes access (in-cluster or --kubeconfig) and the
// scheduler. Without any API configuration recovery still repairs from on-disk state.
import type { Driver } from '../driver.js';
import { errorMessage } from '../errors.js';
import { type KubeReader, createKubeReader } from '../kube/client.js';
import type { MountEngine } from '../mount/index.js';
import { Recovery } from './scheduler.js';

export { Recovery, type ScanSummary, type Trigger } from './scheduler.js';

export function startRecovery(driver: Driver, mounter: MountEngine): Recovery {
  const cfg = driver.config;
  let reader: KubeReader | undefined;
  try {
    reader = createKubeReader({ kubeconfig: cfg.kubeconfig, timeoutMs: 10_000 });
  } catch (err) {
    driver.log.warn({ err: errorMessage(err), kubeconfig: cfg.kubeconfig }, 'no Kubernetes API access: recovery uses on-disk state only');
  }
  const recovery = new Recovery(driver, mounter, reader);
  recovery.start();
  driver.log.info({ node: cfg.nodeId, kubeconfig: cfg.kubeconfig ?? (reader ? 'in-cluster' : 'none'), interval_ms: cfg.recovery.intervalMs, parallelism: cfg.recovery.parallelism }, 'recovery started');
  return recovery;
}
