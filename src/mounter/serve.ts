// `s3fs-csi --mode mounter`: the long-lived process that runs every s3fs of this node for the node
// plugin (its own DaemonSet, updated OnDelete, so chart upgrades and node-plugin restarts never take
// s3fs down). Serves proto/mounter.proto on a root-only unix socket, /healthz + /metrics over HTTP.
// SIGTERM (the pod is really going away) stops the s3fs processes gracefully after the calls in flight.
import type { Config } from '../config.js';
import { Driver } from '../driver.js';
import { createLogger } from '../log.js';
import { Mounter } from '../mount/mounter.js';
import { checkDirectory, checkFuseDevice, checkMountHelper, checkS3fsBinary } from '../mount/prerequisites.js';
import { packageVersion } from '../paths.js';
import { MounterServer } from './server.js';

export async function serveMounter(cfg: Config): Promise<void> {
  const socketPath = cfg.mounterSocketPath;
  if (!socketPath) throw new Error('mounter mode needs --mounter-endpoint');
  const log = createLogger(cfg.logLevel).child({ role: 'mounter' });
  const driver = new Driver(cfg, log);
  driver.addHealthCheck('s3fs', () => checkS3fsBinary(cfg.s3fsPath));
  driver.addHealthCheck('fuse', () => checkFuseDevice());
  driver.addHealthCheck('mount-helper', () => checkMountHelper());
  driver.addHealthCheck('kubelet-dir', () => checkDirectory(cfg.kubeletDir, 'kubelet directory'));
  const mounter = new Mounter(driver);
  const server = new MounterServer(driver, mounter, socketPath);
  await server.listen();
  // The socket first: the node plugin waits for it after every mounter restart, with every volume of
  // the node down. The HTTP side (fastify: /healthz, /metrics) and the process starter come after it.
  const { startMounterHttp } = await import('./http.js');
  const http = await startMounterHttp(driver, socketPath);
  mounter.warmUp();
  log.info({ version: packageVersion, api_version: server.hello.apiVersion, instance: server.hello.instanceId, socket: socketPath, node: cfg.nodeId, http: cfg.http }, 's3fs-csi mounter serving');

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'mounter shutting down');
    await server.shutdown(cfg.shutdownTimeoutMs);
    // Its pod is really going away: let every s3fs upload what it holds (unless told to keep them).
    if (cfg.s3fsOnExit === 'stop') await mounter.shutdown(cfg.s3fsStopGraceMs);
    await http?.close();
    log.info('mounter stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception'));
}
