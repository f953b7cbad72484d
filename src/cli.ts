// Command line: `s3fs-csi [serve flags]` runs the driver, `s3fs-csi probe` is the exec liveness probe.
// Every flag can also come from the environment variable shown in --help.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  type Config, DEFAULT_MOUNTER_ENDPOINT, MODES, type Mode, defaultNodeId, logLevelOf, normaliseRoot, parseHttpEndpoint, socketPathOf,
} from './config.js';
import { parseDuration } from './duration.js';
import { packageVersion } from './paths.js';
import { SECRET_KEYS } from './s3/connection.js';
import { Secret } from './secrets.js';

const duration = (v: string): number => {
  try {
    return parseDuration(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
};
const integer = (v: string): number => {
  if (!/^-?\d+$/.test(v)) throw new InvalidArgumentError(`"${v}" is not an integer`);
  return Number(v);
};
const collect = (v: string, prev: string[]): string[] => [...prev, ...v.split(',').filter(Boolean)];
const bool = (v: string): boolean => {
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  throw new InvalidArgumentError(`"${v}" is not a boolean`);
};

interface ServeOptions {
  endpoint: string;
  mounterEndpoint?: string;
  mode: Mode;
  nodeid: string;
  drivername: string;
  httpEndpoint?: string;
  healthPort: number;
  probeTimeout: number;
  kubeletDir: string;
  allowedRoot: string[];
  v: number;
  logLevel?: string;
  s3Endpoint?: string;
  s3Region: string;
  s3SecretDir?: string;
  s3PathStyle: boolean;
  s3CaBundle?: string;
  s3Insecure: boolean;
  s3fsPath: string;
  stateDir: string;
  runtimeDir: string;
  maxVolumesPerNode: number;
  kubeconfig?: string;
  recovery: boolean;
  recoveryInterval: number;
  recoveryParallelism: number;
  events: boolean;
  shutdownTimeout: number;
  mountCheckTimeout: number;
  mountTimeout: number;
  registration: 'builtin' | 'none';
  kubeletRegistrationPath?: string;
  registrationDir?: string;
  healHelper: string;
  s3fsOnExit: 'stop' | 'keep';
  s3fsStopGrace: number;
}

/** Reads a mounted Secret directory (one file per key), as Kubernetes projects a Secret volume. */
function readSecretDir(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.values(SECRET_KEYS)) {
    try {
      out[key] = readFileSync(`${dir}/${key}`, 'utf8').trim();
    } catch {
      // absent keys are simply not set
    }
  }
  return out;
}

export function configFrom(o: ServeOptions): Config {
  const fromDir = o.s3SecretDir ? readSecretDir(o.s3SecretDir) : {};
  const accessKey = fromDir.accessKeyID ?? process.env.AWS_ACCESS_KEY_ID;
  const secretKey = fromDir.secretAccessKey ?? process.env.AWS_SECRET_ACCESS_KEY;
  const sessionToken = fromDir.sessionToken ?? process.env.AWS_SESSION_TOKEN;
  const kubeletDir = normaliseRoot(o.kubeletDir);
  return {
    socketPath: socketPathOf(o.endpoint),
    mounterSocketPath: o.mounterEndpoint ? socketPathOf(o.mounterEndpoint) : o.mode === 'mounter' ? socketPathOf(DEFAULT_MOUNTER_ENDPOINT) : undefined,
    mode: o.mode,
    nodeId: o.nodeid,
    driverName: o.drivername,
    http: o.httpEndpoint ? parseHttpEndpoint(o.httpEndpoint) : o.healthPort > 0 ? { host: '0.0.0.0', port: o.healthPort } : undefined,
    probeTimeoutMs: o.probeTimeout,
    kubeletDir,
    allowedRoots: [kubeletDir, ...o.allowedRoot.map(normaliseRoot)],
    logLevel: logLevelOf(o.v, o.logLevel),
    s3: {
      endpoint: o.s3Endpoint ?? fromDir.endpoint,
      region: fromDir.region ?? o.s3Region,
      accessKeyId: accessKey ? new Secret(accessKey) : undefined,
      secretAccessKey: secretKey ? new Secret(secretKey) : undefined,
      sessionToken: sessionToken ? new Secret(sessionToken) : undefined,
      pathStyle: o.s3PathStyle,
      caBundle: o.s3CaBundle,
      insecureSkipVerify: o.s3Insecure,
    },
    s3fsPath: o.s3fsPath,
    stateDir: normaliseRoot(o.stateDir),
    runtimeDir: normaliseRoot(o.runtimeDir),
    maxVolumesPerNode: o.maxVolumesPerNode,
    kubeconfig: o.kubeconfig,
    recovery: { enabled: o.recovery, intervalMs: o.recoveryInterval, parallelism: o.recoveryParallelism, events: o.events },
    shutdownTimeoutMs: o.shutdownTimeout,
    mountCheckTimeoutMs: o.mountCheckTimeout,
    mountTimeoutMs: o.mountTimeout,
    registration: o.registration === 'builtin' ? {
      socketPath: join(normaliseRoot(o.registrationDir ?? join(kubeletDir, 'plugins_registry')), `${o.drivername}-reg.sock`),
      kubeletCsiSocketPath: o.kubeletRegistrationPath ?? join(kubeletDir, 'plugins', o.drivername, 'csi.sock'),
    } : undefined,
    healHelper: o.healHelper,
    s3fsOnExit: o.s3fsOnExit,
    s3fsStopGraceMs: o.s3fsStopGrace,
  };
}

const opt = (flags: string, description: string, env: string): Option => new Option(flags, description).env(env);

export function buildCli(actions: {
  serve: (cfg: Config) => Promise<void>;
  probe: (o: { endpoint: string; timeoutMs: number; requireReady: boolean }) => Promise<void>;
}): Command {
  const program = new Command('s3fs-csi')
    .description('CSI driver for S3 buckets mounted with s3fs-fuse (Identity, Controller and Node services)')
    .version(packageVersion, '--version')
    .showHelpAfterError()
    .enablePositionalOptions()
    .addOption(opt('--endpoint <endpoint>', 'CSI endpoint: unix:///path/csi.sock or a bare path', 'CSI_ENDPOINT').default('unix:///csi/csi.sock'))
    .addOption(opt('--mode <mode>', 'services to serve; mounter = the long-lived s3fs host of a node plugin', 'S3FS_CSI_MODE').choices(MODES).default('all'))
    .addOption(opt('--mounter-endpoint <endpoint>', `mounter mode: socket to serve (default ${DEFAULT_MOUNTER_ENDPOINT}); node mode: the mounter that runs s3fs (unset: s3fs runs in this process)`, 'S3FS_CSI_MOUNTER_ENDPOINT'))
    .addOption(opt('--nodeid <id>', 'this node\'s id (the Kubernetes node name)', 'KUBE_NODE_NAME').default(defaultNodeId()))
    .addOption(opt('--drivername <name>', 'CSI driver name', 'S3FS_CSI_DRIVER_NAME').default('s3fs.csi.dev'))
    .addOption(opt('--http-endpoint <host:port>', 'listen address of /healthz, /readyz, /metrics (overrides --health-port)', 'S3FS_CSI_HTTP_ENDPOINT'))
    .addOption(opt('--health-port <port>', 'port of /healthz, /readyz, /metrics on every interface; 0 disables', 'S3FS_CSI_HEALTH_PORT').argParser(integer).default(9808))
    .addOption(opt('--probe-timeout <duration>', 'deadline of the Probe call behind /healthz', 'S3FS_CSI_PROBE_TIMEOUT').argParser(duration).default(3000, '3s'))
    .addOption(opt('--kubelet-dir <dir>', 'kubelet root directory (kubelet --root-dir)', 'S3FS_CSI_KUBELET_DIR').default('/var/lib/kubelet'))
    .addOption(opt('--allowed-root <dir>', 'extra root under which staging/target paths are accepted (repeatable, comma-separated)', 'S3FS_CSI_ALLOWED_ROOTS').argParser(collect).default([]))
    .addOption(opt('--v <level>', 'klog-style log verbosity (4 = debug, 6 = trace)', 'S3FS_CSI_V').argParser(integer).default(2))
    .addOption(opt('--log-level <level>', 'pino log level (overrides --v)', 'S3FS_CSI_LOG_LEVEL').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal']))
    .addOption(opt('--s3-endpoint <url>', 'default S3 endpoint URL for requests whose secrets name none', 'S3FS_CSI_S3_ENDPOINT'))
    .addOption(opt('--s3-region <region>', 'default S3 region', 'S3FS_CSI_S3_REGION').default('us-east-1'))
    .addOption(opt('--s3-secret-dir <dir>', 'mounted Secret with default credentials (files accessKeyID, secretAccessKey, ...); else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY', 'S3FS_CSI_S3_SECRET_DIR'))
    .addOption(opt('--s3-path-style <bool>', 'path-style bucket addressing', 'S3FS_CSI_S3_PATH_STYLE').argParser(bool).default(true))
    .addOption(opt('--s3-ca-bundle <file>', 'PEM CA bundle trusted for the S3 endpoint', 'S3FS_CSI_S3_CA_BUNDLE'))
    .addOption(opt('--s3-insecure <bool>', 'skip TLS verification of the S3 endpoint', 'S3FS_CSI_S3_INSECURE').argParser(bool).default(false))
    .addOption(opt('--s3fs-path <path>', 's3fs binary', 'S3FS_CSI_S3FS_PATH').default('s3fs'))
    .addOption(opt('--state-dir <dir>', 'driver-owned directory for s3fs backing mounts', 'S3FS_CSI_STATE_DIR').default('/var/lib/s3fs-csi'))
    .addOption(opt('--runtime-dir <dir>', 'private directory for per-volume passwd files', 'S3FS_CSI_RUNTIME_DIR').default('/run/s3fs-csi'))
    .addOption(opt('--max-volumes-per-node <n>', 'reported in NodeGetInfo; 0 = unlimited', 'S3FS_CSI_MAX_VOLUMES_PER_NODE').argParser(integer).default(0))
    .addOption(opt('--kubeconfig <file>', 'kubeconfig for recovery outside a cluster (default: in-cluster config)', 'KUBECONFIG'))
    .addOption(opt('--recovery <bool>', 'rebuild lost mounts from the Kubernetes API (node mode)', 'S3FS_CSI_RECOVERY').argParser(bool).default(true))
    .addOption(opt('--recovery-interval <duration>', 'period of the background recovery scan', 'S3FS_CSI_RECOVERY_INTERVAL').argParser(duration).default(60_000, '60s'))
    .addOption(opt('--recovery-parallelism <n>', 'volumes repaired at once', 'S3FS_CSI_RECOVERY_PARALLELISM').argParser(integer).default(32))
    .addOption(opt('--events <bool>', 'write Kubernetes Events on the Pods and PVCs recovery repairs or cannot repair (needs create/patch on events)', 'S3FS_CSI_EVENTS').argParser(bool).default(true))
    .addOption(opt('--shutdown-timeout <duration>', 'how long in-flight calls may run after SIGTERM (then they are aborted and undo half-done work)', 'S3FS_CSI_SHUTDOWN_TIMEOUT').argParser(duration).default(10_000, '10s'))
    .addOption(opt('--mount-check-timeout <duration>', 'deadline of one mount health check', 'S3FS_CSI_MOUNT_CHECK_TIMEOUT').argParser(duration).default(2000, '2s'))
    .addOption(opt('--mount-timeout <duration>', 'how long NodeStageVolume waits for s3fs to mount', 'S3FS_CSI_MOUNT_TIMEOUT').argParser(duration).default(30_000, '30s'))
    .addOption(opt('--registration <how>', 'kubelet plugin registration: builtin (serve it in node mode) or none (a node-driver-registrar sidecar does it)', 'S3FS_CSI_REGISTRATION').choices(['builtin', 'none']).default('none'))
    .addOption(opt('--kubelet-registration-path <path>', 'the CSI socket as kubelet sees it (default <kubelet-dir>/plugins/<drivername>/csi.sock)', 'S3FS_CSI_KUBELET_REGISTRATION_PATH'))
    .addOption(opt('--registration-dir <dir>', 'kubelet\'s plugin registration directory (default <kubelet-dir>/plugins_registry)', 'S3FS_CSI_REGISTRATION_DIR'))
    .addOption(opt('--heal-helper <path>', 'helper that heals running containers\' dead mounts in place after a repair (a path or a name on PATH; none = off)', 'S3FS_CSI_HEAL_HELPER').default('s3fs-csi-heal'))
    .addOption(opt('--s3fs-on-exit <what>', 'on SIGTERM: stop every s3fs gracefully (uploads pending writes) or keep them running', 'S3FS_CSI_S3FS_ON_EXIT').choices(['stop', 'keep']).default('stop'))
    .addOption(opt('--s3fs-stop-grace <duration>', 'how long a graceful s3fs stop may take before SIGKILL', 'S3FS_CSI_S3FS_STOP_GRACE').argParser(duration).default(15_000, '15s'))
    .action(async (o: ServeOptions) => {
      let cfg: Config | undefined;
      try {
        cfg = configFrom(o);
      } catch (err) {
        program.error(`s3fs-csi: ${(err as Error).message}`);
      }
      if (cfg) await actions.serve(cfg);
    });

  program
    .command('probe')
    .description('exec liveness probe: calls Identity.Probe on the socket; exit 0 = healthy and ready')
    .addOption(opt('--endpoint <endpoint>', 'CSI endpoint', 'CSI_ENDPOINT').default('unix:///csi/csi.sock'))
    .addOption(opt('--timeout <duration>', 'deadline of the Probe call', 'S3FS_CSI_PROBE_TIMEOUT').argParser(duration).default(3000, '3s'))
    .option('--ignore-not-ready', 'exit 0 while the driver is healthy but still starting (use for livenessProbe)', false)
    .action(async (o: { endpoint: string; timeout: number; ignoreNotReady: boolean }) => {
      await actions.probe({ endpoint: o.endpoint, timeoutMs: o.timeout, requireReady: !o.ignoreNotReady });
    });
  return program;
}
