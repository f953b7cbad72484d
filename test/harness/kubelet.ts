// kubelet 1.34 for a test node: named `localhost` (any other name is looked up through DNS, and
// --node-ip 127.0.0.1 is refused), serving on 127.0.0.1 only, webhook authentication and
// authorization against the API server with the node CA for client certificates, no cgroups per QoS,
// no iptables, eviction effectively off (a test machine's disk and memory are not the node's), its
// own root directory (kubelet bind-mounts it onto itself, rshared).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface KubeletOptions {
  bin: string;
  dir: string;
  rootDir: string;
  nodeName: string;
  port: number;
  healthzPort: number;
  containerdSocket: string;
  caCert: string;
  clientCert: string;
  clientKey: string;
  server: string;
  serverCaPem: string;
}

export interface Kubelet {
  pid: number;
  log: string[];
  exited: Promise<void>;
  stop(): Promise<void>;
}

/** KubeletConfiguration (kubelet.config.k8s.io/v1beta1) as JSON, which kubelet reads as YAML (pure). */
export function kubeletConfig(o: Pick<KubeletOptions, 'port' | 'healthzPort' | 'containerdSocket' | 'caCert' | 'dir'>): string {
  return JSON.stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: '127.0.0.1',
    port: o.port,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: o.healthzPort,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: o.caCert } },
    authorization: { mode: 'Webhook' },
    cgroupDriver: 'cgroupfs',
    cgroupsPerQOS: false,
    enforceNodeAllocatable: [],
    failSwapOn: false,
    failCgroupV1: false,
    makeIPTablesUtilChains: false,
    containerRuntimeEndpoint: `unix://${o.containerdSocket}`,
    imageServiceEndpoint: `unix://${o.containerdSocket}`,
    podLogsDirectory: join(o.dir, 'pod-logs'),
    // The host's resolv.conf is fine for pods that resolve nothing; no cluster DNS runs here.
    resolvConf: '/etc/resolv.conf',
    evictionHard: { 'memory.available': '1Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
    evictionPressureTransitionPeriod: '5s',
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    // Pod status and volume reconciliation as fast as kubelet allows: the tests wait on them.
    syncFrequency: '10s',
    nodeStatusUpdateFrequency: '4s',
    serializeImagePulls: false,
    volumeStatsAggPeriod: '10s',
    fileCheckFrequency: '20s',
    staticPodPath: '',
    rotateCertificates: false,
    serverTLSBootstrap: false,
    shutdownGracePeriod: '0s',
    localStorageCapacityIsolation: true,
    // NodeGetVolumeStats' volume condition in the stats summary and kubelet's metrics (alpha in 1.34).
    featureGates: { CSIVolumeHealth: true },
  }, null, 2);
}

export async function startKubelet(o: KubeletOptions): Promise<Kubelet> {
  await mkdir(o.rootDir, { recursive: true });
  await mkdir(join(o.dir, 'pki'), { recursive: true });
  const configFile = join(o.dir, 'kubelet-config.json');
  await writeFile(configFile, kubeletConfig(o));
  const kubeconfig = join(o.dir, 'kubelet.kubeconfig');
  await writeFile(kubeconfig, JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'e2e', cluster: { server: o.server, 'certificate-authority-data': Buffer.from(o.serverCaPem).toString('base64') } }],
    users: [{ name: 'kubelet', user: { 'client-certificate': o.clientCert, 'client-key': o.clientKey } }],
    contexts: [{ name: 'e2e', context: { cluster: 'e2e', user: 'kubelet' } }],
    'current-context': 'e2e',
  }), { mode: 0o600 });
  const child: ChildProcess = spawn(o.bin, [
    '--config', configFile,
    '--kubeconfig', kubeconfig,
    '--root-dir', o.rootDir,
    '--cert-dir', join(o.dir, 'pki'),
    '--hostname-override', o.nodeName,
    '--v', '2',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  const keep = (d: Buffer): void => {
    for (const line of d.toString().split('\n')) if (line) log.push(line);
    if (log.length > 2000) log.splice(0, log.length - 2000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    pid: child.pid ?? 0,
    log,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}
