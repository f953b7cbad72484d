// The driver's typed configuration, built once from flags/environment and passed down.
import { hostname } from 'node:os';
import { isAbsolute, normalize, resolve } from 'node:path';
import type { Secret } from './secrets.js';

/** `mounter`: the long-lived process that runs s3fs for the node plugin (docs/mounter.md). */
export type Mode = 'controller' | 'node' | 'all' | 'mounter';
export const MODES: readonly Mode[] = ['controller', 'node', 'all', 'mounter'];
export const DEFAULT_MOUNTER_ENDPOINT = 'unix:///run/s3fs-csi-mounter/mounter.sock';

export interface S3Defaults {
  /** S3 endpoint URL used when a request's secrets carry none. */
  endpoint?: string;
  region: string;
  accessKeyId?: Secret;
  secretAccessKey?: Secret;
  sessionToken?: Secret;
  /** Path-style addressing (bucket in the path); most self-hosted servers need it. */
  pathStyle: boolean;
  /** PEM bundle to trust for a self-hosted server's TLS certificate. */
  caBundle?: string;
  /** Skip TLS verification (self-signed test servers only). */
  insecureSkipVerify: boolean;
}

export interface Config {
  /** Filesystem path of the CSI unix socket. */
  socketPath: string;
  /**
   * The mounter's unix socket: served in mounter mode; in node mode the mounter to use (then no s3fs
   * runs in the node plugin); undefined = s3fs runs in this process.
   */
  mounterSocketPath?: string;
  mode: Mode;
  nodeId: string;
  driverName: string;
  /** HTTP listener for /healthz, /readyz, /metrics; undefined disables it. */
  http?: { host: string; port: number };
  probeTimeoutMs: number;
  kubeletDir: string;
  /** Roots under which staging/target paths are accepted: the kubelet dir plus --allowed-root. */
  allowedRoots: string[];
  logLevel: string;
  s3: S3Defaults;
  s3fsPath: string;
  /** Driver-owned directories where s3fs mounts before being bound to staging paths. */
  stateDir: string;
  /** Private (0700) directory for per-volume passwd files. */
  runtimeDir: string;
  maxVolumesPerNode: number;
  kubeconfig?: string;
  /** `events`: recovery writes Kubernetes Events on the Pods and PVCs it repairs (src/kube/events.ts). */
  recovery: { enabled: boolean; intervalMs: number; parallelism: number; events: boolean };
  shutdownTimeoutMs: number;
  /** Deadline of the node's health check of one mount (statfs in a child process). */
  mountCheckTimeoutMs: number;
  /** How long NodeStageVolume waits for s3fs to appear in the mount table. */
  mountTimeoutMs: number;
  /**
   * Built-in kubelet plugin registration (node mode): the registration socket the driver serves in
   * kubelet's plugins_registry, and the CSI socket path as kubelet sees it. Undefined when a
   * node-driver-registrar sidecar registers the driver instead.
   */
  registration?: { socketPath: string; kubeletCsiSocketPath: string };
  /**
   * The s3fs-csi-heal helper that heals containers' private mounts in place after a repair: a path,
   * a name looked up on PATH (then the checkout's build/native copy), or `none` to turn it off.
   */
  healHelper: string;
  /**
   * What the owner of the s3fs processes does with them when it exits: `stop` (in-process node mode:
   * the container's end would SIGKILL them anyway, so stop them gracefully and let them upload) or
   * `keep` (a process that outlives this one owns them, or mounts must survive a restart on a host).
   */
  s3fsOnExit: 'stop' | 'keep';
  /** How long a graceful stop of s3fs may take before SIGKILL. */
  s3fsStopGraceMs: number;
}

export function hasController(cfg: Pick<Config, 'mode'>): boolean {
  return cfg.mode === 'controller' || cfg.mode === 'all';
}
export function hasNode(cfg: Pick<Config, 'mode'>): boolean {
  return cfg.mode === 'node' || cfg.mode === 'all';
}

/** `unix:///csi/csi.sock`, `unix:/csi/csi.sock` or a bare path -> the socket's filesystem path. */
export function socketPathOf(endpoint: string): string {
  let path = endpoint;
  if (path.startsWith('unix://')) path = path.slice('unix://'.length);
  else if (path.startsWith('unix:')) path = path.slice('unix:'.length);
  else if (/^[a-z]+:\/\//i.test(path)) throw new Error(`unsupported endpoint "${endpoint}": only unix sockets are served`);
  if (!path) throw new Error('empty --endpoint');
  return resolve(path);
}

/** `:9808`, `127.0.0.1:9808`, `[::1]:9808` -> host/port. An empty host means every interface. */
export function parseHttpEndpoint(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text.trim());
  if (!match) throw new Error(`invalid --http-endpoint "${text}" (use host:port or :port)`);
  const port = Number(match[3]);
  if (port > 65535) throw new Error(`invalid port in --http-endpoint "${text}"`);
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

/** klog's -v verbosity to a pino level; --log-level wins when given. */
export function logLevelOf(v: number, logLevel?: string): string {
  if (logLevel) return logLevel;
  if (v >= 6) return 'trace';
  if (v >= 4) return 'debug';
  return 'info';
}

export function normaliseRoot(path: string): string {
  if (!isAbsolute(path)) throw new Error(`allowed root "${path}" must be absolute`);
  return normalize(path).replace(/\/+$/, '') || '/';
}

export const defaultNodeId = (): string => process.env.KUBE_NODE_NAME || process.env.NODE_NAME || hostname();
