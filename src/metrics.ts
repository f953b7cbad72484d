// Prometheus metrics. The operations histogram has the name, labels and buckets of the kubernetes-csi
// sidecars (csi-lib-utils), so dashboards built for them work unchanged.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const SIDECAR_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 25, 50, 120, 300, 600];

export class Metrics {
  readonly registry = new Registry();
  readonly operations = new Histogram({
    name: 'csi_sidecar_operations_seconds',
    help: 'Container Storage Interface operation duration with gRPC error code status total',
    labelNames: ['driver_name', 'method_name', 'grpc_status_code'] as const,
    buckets: SIDECAR_BUCKETS,
    registers: [this.registry],
  });
  readonly s3fsExits = new Counter({
    name: 's3fs_csi_s3fs_unexpected_exits_total',
    help: 's3fs processes that exited while their volume was staged',
    registers: [this.registry],
  });
  readonly mountedVolumes = new Gauge({
    name: 's3fs_csi_staged_volumes',
    help: 'Volumes staged on this node, by condition',
    labelNames: ['condition'] as const,
    registers: [this.registry],
  });
  readonly recoveryActions = new Counter({
    name: 's3fs_csi_recovery_actions_total',
    help: 'Recovery plan actions executed, by action and result',
    labelNames: ['action', 'result'] as const,
    registers: [this.registry],
  });
  readonly recoveryRuns = new Counter({
    name: 's3fs_csi_recovery_runs_total',
    help: 'Recovery scans, by trigger and result',
    labelNames: ['trigger', 'result'] as const,
    registers: [this.registry],
  });
  readonly containerHeals = new Counter({
    name: 's3fs_csi_container_heals_total',
    help: 'Dead volume mounts in running containers replaced in place after a repair, by result (healed, failed, skipped)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly recoveryDuration = new Histogram({
    name: 's3fs_csi_recovery_duration_seconds',
    help: 'Duration of one recovery scan and repair',
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });

  readonly eventsWritten = new Counter({
    name: 's3fs_csi_events_written_total',
    help: 'Kubernetes Events written (created or count-patched) on Pods and PVCs, by type and reason',
    labelNames: ['type', 'reason'] as const,
    registers: [this.registry],
  });
  readonly eventsDropped = new Counter({
    name: 's3fs_csi_events_dropped_total',
    help: 'Kubernetes Events not written, by cause (spam, queue-full, forbidden, rejected, unavailable, shutdown)',
    labelNames: ['cause'] as const,
    registers: [this.registry],
  });

  readonly kubeletRegistered = new Gauge({
    name: 's3fs_csi_kubelet_registered',
    help: '1 when kubelet accepted the built-in plugin registration, 0 when it refused it (absent without built-in registration)',
    registers: [this.registry],
  });

  constructor(readonly driverName: string) {
    collectDefaultMetrics({ register: this.registry });
  }

  observeOperation(method: string, code: string, seconds: number): void {
    this.operations.observe({ driver_name: this.driverName, method_name: method, grpc_status_code: code }, seconds);
  }
}
