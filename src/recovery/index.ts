// Recovery's entry point for main.ts: Kubernetes access (in-cluster or --kubeconfig) and the
// scheduler. Without any API configuration recovery still repairs from on-disk state.
import type { Driver } from '../driver.js';
import { errorMessage } from '../errors.js';
import { type KubeReader, createKubeReader } from '../kube/client.js';
import { EventRecorder, apiEventSink } from '../kube/events.js';
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
  const recovery = new Recovery(driver, mounter, reader, reader && cfg.recovery.events ? eventRecorder(driver) : undefined);
  recovery.start();
  driver.log.info({ node: cfg.nodeId, kubeconfig: cfg.kubeconfig ?? (reader ? 'in-cluster' : 'none'), interval_ms: cfg.recovery.intervalMs, parallelism: cfg.recovery.parallelism, events: cfg.recovery.events && reader !== undefined }, 'recovery started');
  return recovery;
}

/** Events as kubelet's recorder writes them: from the driver on this node (docs/recovery.md, "Events"). */
function eventRecorder(driver: Driver): EventRecorder | undefined {
  const cfg = driver.config;
  try {
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
