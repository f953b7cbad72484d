// Recovery's entry point for main.ts: Kubernetes access (in-cluster or --kubeconfig) and the
// scheduler. Without any API configuration recovery still repairs from on-disk state.
// @kubernetes/client-node (about a second to load on a small node) is loaded only after the start-up
// repairs from local state are under way, and not at all without API configuration.
import type { Driver } from '../driver.js';
import { errorMessage } from '../errors.js';
import type { EventRecorder } from '../kube/events.js';
import type { MountEngine } from '../mount/index.js';
import { type KubeAccess, Recovery } from './scheduler.js';

export { Recovery, type ScanSummary, type Trigger } from './scheduler.js';

/** `served`: resolves once every gRPC service answers (Recovery.start loads the Kubernetes client after it). */
export function startRecovery(driver: Driver, mounter: MountEngine, served?: Promise<void>): Recovery {
  const cfg = driver.config;
  const inCluster = Boolean(process.env.KUBERNETES_SERVICE_HOST && process.env.KUBERNETES_SERVICE_PORT);
  const configured = cfg.kubeconfig !== undefined || inCluster;
  const loadAccess = async (): Promise<KubeAccess | undefined> => {
    try {
      const { createKubeReader } = await import('../kube/client.js');
      const reader = createKubeReader({ kubeconfig: cfg.kubeconfig, timeoutMs: 10_000 });
      const events = cfg.recovery.events ? await eventRecorder(driver) : undefined;
      return { reader, events };
    } catch (err) {
      driver.log.warn({ err: errorMessage(err), kubeconfig: cfg.kubeconfig }, 'no Kubernetes API access: recovery uses on-disk state only');
      return undefined;
    }
  };
  if (!configured) driver.log.warn({ err: 'not running in a cluster (KUBERNETES_SERVICE_HOST/PORT unset) and no --kubeconfig given' }, 'no Kubernetes API access: recovery uses on-disk state only');
  const recovery = new Recovery(driver, mounter, configured ? loadAccess : undefined);
  recovery.start(served);
  driver.log.info({ node: cfg.nodeId, kubeconfig: cfg.kubeconfig ?? (inCluster ? 'in-cluster' : 'none'), interval_ms: cfg.recovery.intervalMs, parallelism: cfg.recovery.parallelism, events: cfg.recovery.events && configured }, 'recovery started');
  return recovery;
}

/** Events as kubelet's recorder writes them: from the driver on this node (docs/recovery.md, "Events"). */
async function eventRecorder(driver: Driver): Promise<EventRecorder | undefined> {
  const cfg = driver.config;
  try {
    const { EventRecorder, apiEventSink } = await import('../kube/events.js');
    return new EventRecorder({
      sink: apiEventSink({ kubeconfig: cfg.kubeconfig, timeoutMs: 10_000 }),
      source: { component: cfg.driverName, host: cfg.nodeId, reportingController: cfg.driverName, reportingInstance: cfg.nodeId },
      metrics: driver.metrics,
      log: driver.log,
      // The driver's default keys never appear in a message either.
      secrets: () => [cfg.s3.accessKeyId?.reveal(), cfg.s3.secretAccessKey?.reveal(), cfg.s3.sessionToken?.reveal()].filter((v): v is string => !!v && v.length >= 4),
    });
  } catch (err) {
    driver.log.warn({ err: errorMessage(err) }, 'Kubernetes Events are off: no API access for writing them');
    return undefined;
  }
}
