// Metrics of the mounter API, registered into the Driver's registry of each side. The mounter's s3fs
// processes and their unexpected exits are the mount layer's own metrics (s3fs_csi_staged_volumes,
// s3fs_csi_s3fs_unexpected_exits_total), which live in the mounter process when one is used.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { SIDECAR_BUCKETS } from '../metrics.js';

export class MounterServerMetrics {
  readonly rpcs: Histogram<'method' | 'code'>;
  readonly watchers: Gauge;

  constructor(registry: Registry) {
    this.rpcs = new Histogram({
      name: 's3fs_csi_mounter_rpc_seconds',
      help: 'Mounter API calls served, by method and gRPC status',
      labelNames: ['method', 'code'] as const,
      buckets: SIDECAR_BUCKETS,
      registers: [registry],
    });
    this.watchers = new Gauge({
      name: 's3fs_csi_mounter_watchers',
      help: 'Node plugins subscribed to the mounter\'s event stream',
      registers: [registry],
    });
  }
}

export class MounterClientMetrics {
  readonly connected: Gauge;
  readonly compatible: Gauge;
  readonly info: Gauge<'version' | 'api_version'>;
  readonly newInstances: Counter;

  constructor(registry: Registry) {
    this.connected = new Gauge({
      name: 's3fs_csi_mounter_connected',
      help: '1 while the node plugin has a working handshake and event stream with the mounter',
      registers: [registry],
    });
    this.compatible = new Gauge({
      name: 's3fs_csi_mounter_compatible',
      help: '1 when the last handshake found the mounter\'s API compatible, 0 when it was refused',
      registers: [registry],
    });
    this.info = new Gauge({
      name: 's3fs_csi_mounter_info',
      help: 'Version and API version of the mounter last seen (value 1)',
      labelNames: ['version', 'api_version'] as const,
      registers: [registry],
    });
    this.newInstances = new Counter({
      name: 's3fs_csi_mounter_restarts_seen_total',
      help: 'Handshakes that found a new mounter process (its s3fs were lost with the old one)',
      registers: [registry],
    });
  }
}
